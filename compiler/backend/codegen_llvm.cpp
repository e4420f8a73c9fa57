#include "compiler/backend/codegen_llvm.hpp"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "support/diagnostics.hpp"

namespace modc {

namespace {

using llvm::IRBuilder;
using llvm::Value;

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

    void group(const kp::Group& g, std::size_t gi) {
        bool orthogonal = orthogonalizes(g.map);
        if (orthogonal) {
            for (std::size_t s = 0; s < g.steps.size(); ++s) {
                const auto& step = g.steps[s];
                if (step.kind == kp::StepKind::Normalize || step.kind == kp::StepKind::SvdPolar) normalize(g, gi, step);
                if (step.kind == kp::StepKind::NewtonSchulz || step.kind == kp::StepKind::IterateToConvergence) {
                    poly(g, KernelNames::poly(gi, s), step.coeffs);
                    if (!g.gram) axpy(g, KernelNames::axpy(gi, s), step.coeffs.a);
                }
                if (step.kind == kp::StepKind::IterateToConvergence) change(g, gi);
            }
            symmetrize(g, gi);
            for (std::size_t j = 0; j < g.members.size(); ++j) finish(g, gi, j);
        } else {
            for (std::size_t j = 0; j < g.members.size(); ++j) closed(g, gi, j);
        }
    }

    // Segment k of an optimizer's step over one weight of n elements (cpu_program.hpp: step).
    // Numbers and hyperparameters are combined in double once, before the loop; the tensors
    // are computed in T, each statement in order, kept in registers and stored once at the end.
    void step_segment(const step::StepPlan& plan, std::size_t k, std::int64_t n) {
        begin(KernelNames::step(k, n), llvm::Type::getVoidTy(ctx_),
              {llvm::PointerType::getUnqual(ptr_), llvm::PointerType::getUnqual(acc_)});
        std::vector<Value*> buffers;
        for (int j = 0; j < plan.buffer_count(); ++j)
            buffers.push_back(b_.CreateLoad(ptr_, b_.CreateConstGEP1_64(ptr_, arg(0), static_cast<std::uint64_t>(j))));
        std::vector<Value*> scalars(plan.nodes.size(), nullptr);
        for (std::size_t j = 0; j < plan.nodes.size(); ++j)
            if (plan.nodes[j].scalar) scalars[j] = step_scalar(plan.nodes[j], scalars);
        const step::Segment& segment = plan.segments.at(k);
        loop(n, [&](Value* i) {
            std::map<int, Value*> assigned;  // buffer -> its value after the statements so far
            auto read = [&](int buffer) {
                auto it = assigned.find(buffer);
                return it != assigned.end() ? it->second : load(buffers[static_cast<std::size_t>(buffer)], i);
            };
            std::function<Value*(int)> eval = [&](int id) -> Value* {
                const step::Node& node = plan.nodes.at(static_cast<std::size_t>(id));
                if (node.scalar) return narrow(scalars[static_cast<std::size_t>(id)]);
                switch (node.kind) {
                    case step::NodeKind::Weight: return read(step::StepPlan::weight_buffer());
                    case step::NodeKind::Grad: return read(step::StepPlan::grad_buffer());
                    case step::NodeKind::Var: return read(plan.var_buffer(node.index));
                    case step::NodeKind::Dual: return read(plan.dual_out_buffer(node.index));
                    case step::NodeKind::Neg: return b_.CreateFNeg(eval(node.a));
                    case step::NodeKind::Add: return add(eval(node.a), eval(node.b));
                    case step::NodeKind::Sub: return b_.CreateFSub(eval(node.a), eval(node.b));
                    case step::NodeKind::Mul: return mul(eval(node.a), eval(node.b));
                    case step::NodeKind::Div: return b_.CreateFDiv(eval(node.a), eval(node.b));
                    default: MODC_ASSERT(false, std::string("a tensor ") + step::to_string(node.kind) + " in a step plan");
                }
                return nullptr;
            };
            for (const auto& a : segment.assigns) {
                int buffer = a.target == step::kWeightTarget ? step::StepPlan::weight_buffer() : plan.var_buffer(a.target);
                assigned[buffer] = eval(a.value);
            }
            for (const auto& d : segment.duals) store(eval(d.value), buffers[static_cast<std::size_t>(plan.dual_in_buffer(d.dual))], i);
            for (const auto& [buffer, value] : assigned) store(value, buffers[static_cast<std::size_t>(buffer)], i);
        });
        b_.CreateRetVoid();
    }

private:
    Value* step_scalar(const step::Node& node, const std::vector<Value*>& done) {
        auto at = [&](int id) { return done.at(static_cast<std::size_t>(id)); };
        switch (node.kind) {
            case step::NodeKind::Number: return wide(node.value);
            case step::NodeKind::Hyper:
                return b_.CreateLoad(acc_, b_.CreateConstGEP1_64(acc_, arg(1), static_cast<std::uint64_t>(node.index)));
            case step::NodeKind::Neg: return b_.CreateFNeg(at(node.a));
            case step::NodeKind::Add: return add(at(node.a), at(node.b));
            case step::NodeKind::Sub: return b_.CreateFSub(at(node.a), at(node.b));
            case step::NodeKind::Mul: return mul(at(node.a), at(node.b));
            case step::NodeKind::Div: return b_.CreateFDiv(at(node.a), at(node.b));
            case step::NodeKind::Pow: return b_.CreateBinaryIntrinsic(llvm::Intrinsic::pow, at(node.a), at(node.b));
            default: MODC_ASSERT(false, std::string("a scalar ") + step::to_string(node.kind) + " in a step plan");
        }
        return nullptr;
    }

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

    // Offset of element (o, c) of kernel position `slice` in a [rows, cols, slices] tensor.
    Value* grad_index(const kp::Group& g, Value* o, Value* c, Value* slice) {
        return b_.CreateAdd(b_.CreateMul(idx(o, g.cols, c), i64(g.slices)), slice);
    }
    // The gradient slice and X share one layout: a flat loop does.
    static bool contiguous(const kp::Group& g) { return g.slices == 1 && !g.transpose; }

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

    void normalize(const kp::Group& g, std::size_t gi, const kp::Step& step) {
        begin(KernelNames::normalize(gi), b_.getVoidTy(), {ptr_, ptr_, i64_});
        Value *grad = arg(0), *x = arg(1), *slice = arg(2);
        Elements each = [&](const std::function<void(Value*)>& f) {
            if (g.slices == 1)
                loop(g.rows * g.cols, [&](Value* i) { f(load(grad, i)); });
            else
                loop(g.rows, [&](Value* o) { loop(g.cols, [&](Value* c) { f(load(grad, grad_index(g, o, c, slice))); }); });
        };
        Value* ss = accumulator(wide(0));
        each([&](Value* v) { add_square(ss, v); });
        Value* denom = add(mul(norm2(get(ss), each), wide(step.norm_scale)), wide(step.eps));
        Value* inv = safe_inverse(denom);
        if (contiguous(g)) {
            loop(g.rows * g.cols, [&](Value* i) { store(narrow(mul(widen(load(grad, i)), inv)), x, i); });
            b_.CreateRetVoid();
            return;
        }
        loop(g.rows, [&](Value* o) {
            loop(g.cols, [&](Value* c) {
                Value* v = narrow(mul(widen(load(grad, grad_index(g, o, c, slice))), inv));
                store(v, x, g.transpose ? idx(c, g.rows, o) : idx(o, g.cols, c));
            });
        });
        b_.CreateRetVoid();
    }

    void symmetrize(const kp::Group& g, std::size_t gi) {
        begin(KernelNames::symmetrize(gi), b_.getVoidTy(), {ptr_});
        const std::int64_t m = g.small(), tile = 32, tiles = (m + tile - 1) / tile;
        Value* a = arg(0);
        auto at_most_m = [&](Value* v) { return b_.CreateSelect(b_.CreateICmpSLT(v, i64(m)), v, i64(m)); };
        // Tile by tile (32 x 32, the upper triangle's tiles and the diagonal's): each store goes a
        // row down, and within a tile the rows it writes stay in cache for the next column, where
        // a whole-row sweep would miss on every store once m rows no longer fit.
        loop(tiles, [&](Value* ti) {
            loop(ti, i64(tiles), [&](Value* tj) {
                Value* i0 = b_.CreateMul(ti, i64(tile));
                Value* j0 = b_.CreateMul(tj, i64(tile));
                loop(i0, at_most_m(b_.CreateAdd(i0, i64(tile))), [&](Value* i) {
                    Value* next = b_.CreateAdd(i, i64(1));
                    Value* from = b_.CreateSelect(b_.CreateICmpSGT(next, j0), next, j0);
                    loop(from, at_most_m(b_.CreateAdd(j0, i64(tile))),
                         [&](Value* j) { store(load(a, idx(i, m, j)), a, idx(j, m, i)); });
                });
            });
        });
        b_.CreateRetVoid();
    }

    void poly(const kp::Group& g, const std::string& name, const kp::Coeffs& k) {
        begin(name, b_.getVoidTy(), {ptr_, ptr_, ptr_});
        std::int64_t m = g.small();
        Value *out = arg(0), *a = arg(1), *aa = arg(2);
        loop(m, [&](Value* i) {
            loop(i, i64(m), [&](Value* j) {
                Value* v = mul(real(k.b), load(a, idx(i, m, j)));
                if (k.c != 0) v = add(v, mul(real(k.c), load(aa, idx(i, m, j))));
                store(v, out, idx(i, m, j));
            });
        });
        // Gram Newton-Schulz needs the whole polynomial P = a I + b A + c A A.
        if (g.gram) loop(m, [&](Value* i) { store(add(load(out, idx(i, m, i)), real(k.a)), out, idx(i, m, i)); });
        b_.CreateRetVoid();
    }

    void axpy(const kp::Group& g, const std::string& name, double a) {
        begin(name, b_.getVoidTy(), {ptr_, ptr_});
        Value *y = arg(0), *x = arg(1);
        loop(g.small() * g.large(), [&](Value* i) { store(mul(real(a), load(x, i)), y, i); });
        b_.CreateRetVoid();
    }

    void change(const kp::Group& g, std::size_t gi) {
        begin(KernelNames::change(gi), b_.getDoubleTy(), {ptr_, ptr_});
        Value *x = arg(0), *y = arg(1);
        // In double: the squares of an f32 X of 1e-31 (a gradient of 1e-38 over ||G|| + eps)
        // underflow to zero, which would read as converged after one step.
        Value* diff = accumulator(wide(0));
        Value* norm = accumulator(wide(0));
        loop(g.small() * g.large(), [&](Value* i) {
            Value* xv = widen(load(x, i));
            Value* d = b_.CreateFSub(widen(load(y, i)), xv);
            b_.CreateStore(add(get(diff), mul(d, d)), diff);
            b_.CreateStore(add(get(norm), mul(xv, xv)), norm);
        });
        b_.CreateRet(b_.CreateFMul(sqrt(get(diff)), safe_inverse(sqrt(get(norm)))));
    }

    void finish(const kp::Group& g, std::size_t gi, std::size_t j) {
        begin(KernelNames::finish(gi, j), b_.getVoidTy(), {ptr_, ptr_, i64_});
        Value *update = arg(0), *x = arg(1), *slice = arg(2);
        Value* scale = real(g.members[j].scale);
        if (contiguous(g)) {
            loop(g.rows * g.cols, [&](Value* i) { store(mul(scale, load(x, i)), update, i); });
            b_.CreateRetVoid();
            return;
        }
        loop(g.rows, [&](Value* o) {
            loop(g.cols, [&](Value* c) {
                Value* v = load(x, g.transpose ? idx(c, g.rows, o) : idx(o, g.cols, c));
                store(mul(scale, v), update, grad_index(g, o, c, slice));
            });
        });
        b_.CreateRetVoid();
    }

    Value* sign(Value* v) {
        Value* positive = b_.CreateFCmpOGT(v, real(0));
        Value* negative = b_.CreateFCmpOLT(v, real(0));
        return b_.CreateSelect(positive, real(1), b_.CreateSelect(negative, real(-1), real(0)));
    }

    void closed(const kp::Group& g, std::size_t gi, std::size_t j) {
        begin(KernelNames::closed(gi, j), b_.getVoidTy(), {ptr_, ptr_, ptr_});
        Value *update = arg(0), *grad = arg(1), *scratch = arg(2);
        Value* scale = real(g.members[j].scale);
        std::int64_t n = g.elements();
        switch (g.map) {
            case MapKind::NormalizeColumns: {
                // sums[c] = sum over rows of g[o, c]^2 (scratch holds cols doubles), then each
                // column scaled by 1/sqrt.
                Value* sums = b_.CreateBitCast(scratch, llvm::PointerType::getUnqual(acc_));
                auto sum_at = [&](Value* c) { return b_.CreateGEP(acc_, sums, c); };
                loop(g.cols, [&](Value* c) { b_.CreateStore(wide(0), sum_at(c)); });
                loop(g.rows, [&](Value* o) {
                    loop(g.cols, [&](Value* c) { add_square(sum_at(c), load(grad, idx(o, g.cols, c))); });
                });
                loop(g.cols, [&](Value* c) {
                    Elements column = [&](const std::function<void(Value*)>& f) {
                        loop(g.rows, [&](Value* o) { f(load(grad, idx(o, g.cols, c))); });
                    };
                    Value* norm = norm2(b_.CreateLoad(acc_, sum_at(c)), column);
                    b_.CreateStore(mul(wide(g.members[j].scale), safe_inverse(norm)), sum_at(c));
                });
                loop(g.rows, [&](Value* o) {
                    loop(g.cols, [&](Value* c) {
                        Value* v = mul(widen(load(grad, idx(o, g.cols, c))), b_.CreateLoad(acc_, sum_at(c)));
                        store(narrow(v), update, idx(o, g.cols, c));
                    });
                });
                break;
            }
            case MapKind::NormalizeRows: {
                loop(g.rows, [&](Value* o) {
                    Elements row = [&](const std::function<void(Value*)>& f) {
                        loop(g.cols, [&](Value* c) { f(load(grad, idx(o, g.cols, c))); });
                    };
                    Value* ss = accumulator(wide(0));
                    row([&](Value* v) { add_square(ss, v); });
                    Value* factor = mul(wide(g.members[j].scale), safe_inverse(norm2(get(ss), row)));
                    loop(g.cols, [&](Value* c) {
                        store(narrow(mul(widen(load(grad, idx(o, g.cols, c))), factor)), update, idx(o, g.cols, c));
                    });
                });
                break;
            }
            case MapKind::Normalize: {
                Elements all = [&](const std::function<void(Value*)>& f) { loop(n, [&](Value* i) { f(load(grad, i)); }); };
                Value* ss = accumulator(wide(0));
                all([&](Value* v) { add_square(ss, v); });
                Value* factor = mul(wide(g.members[j].scale), safe_inverse(norm2(get(ss), all)));
                loop(n, [&](Value* i) { store(narrow(mul(widen(load(grad, i)), factor)), update, i); });
                break;
            }
            case MapKind::Sign:
                loop(n, [&](Value* i) { store(mul(scale, sign(load(grad, i))), update, i); });
                break;
            case MapKind::MaxCoordinate: {
                // The first coordinate of largest magnitude gets scale * its sign; the rest 0.
                Value* best = accumulator(real(-1));
                llvm::IRBuilder<> entry(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
                Value* where = entry.CreateAlloca(i64_);
                b_.CreateStore(i64(0), where);
                // An ordered search: no reassociation here.
                llvm::FastMathFlags saved = b_.getFastMathFlags();
                b_.setFastMathFlags(llvm::FastMathFlags());
                loop(n, [&](Value* i) {
                    Value* mag = b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, load(grad, i));
                    Value* better = b_.CreateFCmpOGT(mag, get(best));
                    b_.CreateStore(b_.CreateSelect(better, mag, get(best)), best);
                    b_.CreateStore(b_.CreateSelect(better, i, b_.CreateLoad(i64_, where)), where);
                    store(real(0), update, i);
                });
                Value* w = b_.CreateLoad(i64_, where);
                store(mul(scale, sign(load(grad, w))), update, w);
                b_.setFastMathFlags(saved);
                break;
            }
            default: MODC_ASSERT(false, "not a closed-form map");
        }
        b_.CreateRetVoid();
    }
};

}  // namespace

namespace {

LlvmModule empty_module(const std::string& name) {
    LlvmModule out;
    out.context = std::make_unique<llvm::LLVMContext>();
    out.module = std::make_unique<llvm::Module>(name, *out.context);
    return out;
}

LlvmModule verified(LlvmModule m) {
    std::string errors;
    llvm::raw_string_ostream es(errors);
    MODC_ASSERT(!llvm::verifyModule(*m.module, &es), "generated LLVM IR does not verify: " + es.str());
    return m;
}

}  // namespace

LlvmModule codegen_llvm(const kp::KernelPlan& plan, ElementType type) {
    LlvmModule out = empty_module("modc_" + plan.network + "_" + to_string(type));
    for (std::size_t g = 0; g < plan.groups.size(); ++g) Emitter(*out.module, type).group(plan.groups[g], g);
    return verified(std::move(out));
}

LlvmModule codegen_llvm_step(const step::StepPlan& plan, const std::vector<std::int64_t>& element_counts,
                             ElementType type) {
    LlvmModule out = empty_module("modc_step_" + plan.optimizer + "_" + to_string(type));
    std::set<std::int64_t> sizes(element_counts.begin(), element_counts.end());
    for (std::size_t k = 0; k < plan.segments.size(); ++k)
        for (std::int64_t n : sizes) Emitter(*out.module, type).step_segment(plan, k, n);
    return verified(std::move(out));
}

std::string print_llvm(LlvmModule m) {
    std::string text;
    llvm::raw_string_ostream os(text);
    m.module->print(os, nullptr);
    return os.str();
}

}  // namespace modc
