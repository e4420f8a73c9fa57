// compiler/backend/llvm_emitter: what the LLVM back end's emitters share (codegen_llvm.cpp, the
// dualizer's kernels; codegen_llvm_step.cpp, an optimizer's step): a function being built, its
// loops, loads and stores in T (f32 or f64), scalars and sums in double, and the sums and 2-norms
// whose order depends on the length alone. Included by those two files only.
#pragma once
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "program/cpu_program.hpp"
#include "support/diagnostics.hpp"

namespace modc::llvm_emitter {

using llvm::IRBuilder;
using llvm::Value;

// An empty module in a context of its own, and a module checked by LLVM's verifier (a failure
// is modc's bug: InternalError).
LlvmModule empty_module(const std::string& name);
LlvmModule verified(LlvmModule m);

class Emitter {
public:
    Emitter(llvm::Module& m, ElementType type)
        : m_(m), ctx_(m.getContext()), b_(ctx_), type_(type) {
        t_ = type == ElementType::F32 ? llvm::Type::getFloatTy(ctx_) : llvm::Type::getDoubleTy(ctx_);
        acc_ = llvm::Type::getDoubleTy(ctx_);
        i64_ = llvm::Type::getInt64Ty(ctx_);
        ptr_ = llvm::PointerType::getUnqual(t_);
        // Reassociation lets the vectorizer split reductions into lanes.
        llvm::FastMathFlags fmf;
        fmf.setAllowReassoc();
        fmf.setAllowContract();
        b_.setFastMathFlags(fmf);
    }

protected:
    llvm::Module& m_;
    llvm::LLVMContext& ctx_;
    IRBuilder<> b_;
    ElementType type_;
    llvm::Type* t_;
    llvm::Type* acc_;  // sums of squares and norms, in double: f32 gradients near 1e+-30 neither overflow nor underflow
    llvm::Type* i64_;
    llvm::Type* ptr_;
    llvm::Function* fn_ = nullptr;

    Value* i64(std::int64_t v) { return llvm::ConstantInt::get(i64_, static_cast<std::uint64_t>(v), true); }
    Value* real(double v) { return llvm::ConstantFP::get(t_, v); }
    Value* wide(double v) { return llvm::ConstantFP::get(acc_, v); }
    Value* widen(Value* v) { return t_ == acc_ ? v : b_.CreateFPExt(v, acc_); }
    Value* narrow(Value* v) { return t_ == acc_ ? v : b_.CreateFPTrunc(v, t_); }

    llvm::Function* begin(const std::string& name, llvm::Type* ret, std::vector<llvm::Type*> params) {
        auto* fty = llvm::FunctionType::get(ret, params, false);
        fn_ = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m_);
        for (auto& arg : fn_->args())
            if (arg.getType()->isPointerTy()) arg.addAttr(llvm::Attribute::NoAlias);
        fn_->addFnAttr(llvm::Attribute::NoUnwind);
        b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", fn_));
        return fn_;
    }
    Value* arg(unsigned i) { return fn_->getArg(i); }

    // for (i = from; i < to; ++i) body(i)
    void loop(Value* from, Value* to, const std::function<void(Value*)>& body) {
        llvm::BasicBlock* pre = b_.GetInsertBlock();
        auto* head = llvm::BasicBlock::Create(ctx_, "loop", fn_);
        auto* exit = llvm::BasicBlock::Create(ctx_, "done", fn_);
        b_.CreateCondBr(b_.CreateICmpSLT(from, to), head, exit);
        b_.SetInsertPoint(head);
        auto* i = b_.CreatePHI(i64_, 2, "i");
        i->addIncoming(from, pre);
        body(i);
        Value* next = b_.CreateAdd(i, i64(1), "", true, true);
        i->addIncoming(next, b_.GetInsertBlock());
        auto* back = b_.CreateCondBr(b_.CreateICmpSLT(next, to), head, exit);
        // No full unrolling: with every trip count constant, LLVM would otherwise unroll outer
        // loops into megabytes of code. The vectorizer still widens and interleaves the loop.
        llvm::Metadata* disable = llvm::MDNode::get(ctx_, llvm::MDString::get(ctx_, "llvm.loop.unroll.disable"));
        llvm::MDNode* id = llvm::MDNode::getDistinct(ctx_, {nullptr, disable});
        id->replaceOperandWith(0, id);
        back->setMetadata(llvm::LLVMContext::MD_loop, id);
        b_.SetInsertPoint(exit);
    }
    void loop(std::int64_t n, const std::function<void(Value*)>& body) { loop(i64(0), i64(n), body); }

    Value* at(Value* base, Value* index) { return b_.CreateGEP(t_, base, index); }
    Value* load(Value* base, Value* index) { return b_.CreateLoad(t_, at(base, index)); }
    void store(Value* v, Value* base, Value* index) { b_.CreateStore(v, at(base, index)); }
    Value* mul(Value* a, Value* b) { return b_.CreateFMul(a, b); }
    Value* add(Value* a, Value* b) { return b_.CreateFAdd(a, b); }
    Value* sqrt(Value* v) { return b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, v); }
    Value* idx(Value* row, std::int64_t stride, Value* col) { return b_.CreateAdd(b_.CreateMul(row, i64(stride)), col); }

    // A scalar accumulator in a stack slot; SROA turns it into a register.
    Value* accumulator(Value* init) {
        llvm::IRBuilder<> entry(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
        Value* slot = entry.CreateAlloca(init->getType());
        b_.CreateStore(init, slot);
        return slot;
    }
    Value* get(Value* slot) { return b_.CreateLoad(llvm::cast<llvm::AllocaInst>(slot)->getAllocatedType(), slot); }

    // x / d, or 0 where d is 0: zero gradients map to zero, never NaN.
    Value* safe_inverse(Value* d) {
        auto* zero = llvm::ConstantFP::get(d->getType(), 0.0);
        return b_.CreateSelect(b_.CreateFCmpOEQ(d, zero), zero,
                               b_.CreateFDiv(llvm::ConstantFP::get(d->getType(), 1.0), d));
    }
    // *sum += v * v, the sum in double.
    void add_square(Value* sum, Value* v) {
        Value* w = widen(v);
        b_.CreateStore(add(b_.CreateLoad(acc_, sum), mul(w, w)), sum);
    }

    // Sums of terms over i in [0, n), in double, in kLanes interleaved lanes: lane k adds the
    // terms of i = k (mod kLanes) in order, then the lanes are added by halves (k + 8, then + 4,
    // + 2, + 1). Each lane is one vector element, so the loop runs at the CPU's vector width with
    // kLanes / width independent chains, and the order depends on n alone: not on the thread
    // count, the alignment, or the vector width (no reassociation is allowed here; contraction
    // into FMA is). terms(first, width) gives, for each sum, a <width x double> vector of the
    // terms of first .. first + width - 1.
    static constexpr unsigned kLanes = 16;
    using Terms = std::function<std::vector<Value*>(Value* first, unsigned width)>;
    std::vector<Value*> lane_sums(std::int64_t n, std::size_t count, const Terms& terms) {
        llvm::FastMathFlags saved = b_.getFastMathFlags();
        llvm::FastMathFlags ordered;
        ordered.setAllowContract();
        b_.setFastMathFlags(ordered);
        auto* lanes = llvm::FixedVectorType::get(acc_, kLanes);
        std::vector<Value*> sums;
        for (std::size_t j = 0; j < count; ++j) sums.push_back(accumulator(llvm::Constant::getNullValue(lanes)));
        auto accumulate = [&](const std::vector<Value*>& values) {
            for (std::size_t j = 0; j < count; ++j) b_.CreateStore(add(get(sums[j]), values.at(j)), sums[j]);
        };
        loop(n / kLanes, [&](Value* i) { accumulate(terms(b_.CreateMul(i, i64(kLanes)), kLanes)); });
        if (unsigned rest = static_cast<unsigned>(n % kLanes)) {
            // The last n mod kLanes terms go to lanes 0 .. rest - 1; the other lanes add 0.
            std::vector<int> widen_mask;
            for (unsigned k = 0; k < kLanes; ++k) widen_mask.push_back(static_cast<int>(std::min(k, rest)));
            std::vector<Value*> values = terms(i64(n - rest), rest);
            for (Value*& v : values)
                v = b_.CreateShuffleVector(v, llvm::Constant::getNullValue(v->getType()), widen_mask);
            accumulate(values);
        }
        std::vector<Value*> out;
        for (Value* slot : sums) {
            Value* v = get(slot);
            for (unsigned half = kLanes / 2; half >= 1; half /= 2) {
                std::vector<int> low, high;
                for (unsigned k = 0; k < half; ++k) {
                    low.push_back(static_cast<int>(k));
                    high.push_back(static_cast<int>(k + half));
                }
                v = add(b_.CreateShuffleVector(v, low), b_.CreateShuffleVector(v, high));
            }
            out.push_back(b_.CreateExtractElement(v, std::uint64_t{0}));
        }
        b_.setFastMathFlags(saved);
        return out;
    }
    // <width x T> of elements first .. first + width - 1 of a contiguous vector at base.
    Value* load_lanes(Value* base, Value* first, unsigned width) {
        auto* type = llvm::FixedVectorType::get(t_, width);
        Value* where = b_.CreateBitCast(at(base, first), llvm::PointerType::getUnqual(type));
        return b_.CreateAlignedLoad(type, where, llvm::Align(t_->getPrimitiveSizeInBits() / 8));
    }
    // The vector of v's length with elements of type `element`.
    static llvm::Type* lanes_of(llvm::Type* element, Value* v) {
        return llvm::FixedVectorType::get(element, llvm::cast<llvm::FixedVectorType>(v->getType())->getNumElements());
    }
    Value* narrow_lanes(Value* v) { return t_ == acc_ ? v : b_.CreateFPTrunc(v, lanes_of(t_, v)); }
    Value* widen_lanes(Value* v) { return t_ == acc_ ? v : b_.CreateFPExt(v, lanes_of(acc_, v)); }
    // The sum of squares, in double, of n elements that elements(first, width) gives as <width x T>.
    Value* sum_of_squares(std::int64_t n, const std::function<Value*(Value*, unsigned)>& elements) {
        return lane_sums(n, 1, [&](Value* first, unsigned width) {
            Value* w = widen_lanes(elements(first, width));
            return std::vector<Value*>{mul(w, w)};
        })[0];
    }

    // Calls its argument with each element of a vector whose 2-norm is wanted (emits the loops).
    using Elements = std::function<void(const std::function<void(Value*)>&)>;

    // sqrt(sum_sq), the 2-norm of the elements `each` visits, whose squares add up to sum_sq (in
    // double). f32 values cannot overflow or underflow there (their squares lie within 1e-90 and
    // 1e+77), so for f32 that is all. f64 ones can: squares of 1e+160 overflow to infinity, of
    // 1e-165 underflow to 0. Where the sum is not in [2^-600, infinity) (or is NaN), the norm is
    // computed again as max|v| * sqrt(sum (v / max|v|)^2), which neither overflows nor underflows
    // (LAPACK's nrm2 scales too); these two more passes run only then, and the usual pass is the
    // same loop as in f32. A sum of at least 2^-600 is exact to rounding: the squares that
    // underflowed in it weigh less than n * 2^-474 of it.
    Value* norm2(Value* sum_sq, const Elements& each) {
        Value* plain = sqrt(sum_sq);
        if (t_ != acc_) return plain;
        Value* fits = b_.CreateAnd(b_.CreateFCmpOGE(sum_sq, wide(std::ldexp(1.0, -600))),
                                   b_.CreateFCmpOLT(sum_sq, wide(std::numeric_limits<double>::infinity())));
        llvm::BasicBlock* from_plain = b_.GetInsertBlock();
        auto* rescale = llvm::BasicBlock::Create(ctx_, "rescale", fn_);
        auto* joined = llvm::BasicBlock::Create(ctx_, "norm", fn_);
        b_.CreateCondBr(fits, joined, rescale);
        b_.SetInsertPoint(rescale);
        Value* largest = accumulator(wide(0));
        each([&](Value* v) {
            Value* a = b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, v);
            b_.CreateStore(b_.CreateSelect(b_.CreateFCmpOGT(a, get(largest)), a, get(largest)), largest);
        });
        Value* big = get(largest);
        Value* scaled_sum = accumulator(wide(0));
        each([&](Value* v) {
            Value* w = b_.CreateFDiv(v, big);
            b_.CreateStore(add(get(scaled_sum), mul(w, w)), scaled_sum);
        });
        Value* rescaled = b_.CreateSelect(b_.CreateFCmpOEQ(big, wide(0)), wide(0), mul(big, sqrt(get(scaled_sum))));
        llvm::BasicBlock* from_rescale = b_.GetInsertBlock();
        b_.CreateBr(joined);
        b_.SetInsertPoint(joined);
        llvm::PHINode* norm = b_.CreatePHI(acc_, 2, "norm");
        norm->addIncoming(plain, from_plain);
        norm->addIncoming(rescaled, from_rescale);
        return norm;
    }

    Value* sign(Value* v) {
        Value* positive = b_.CreateFCmpOGT(v, real(0));
        Value* negative = b_.CreateFCmpOLT(v, real(0));
        return b_.CreateSelect(positive, real(1), b_.CreateSelect(negative, real(-1), real(0)));
    }
};

}  // namespace modc::llvm_emitter
