// compiler/backend/codegen_llvm_step: an optimizer's step plan (program/step_plan.hpp) as LLVM IR,
// one function per segment and distinct element count (codegen_llvm.hpp).
#include <map>
#include <set>

#include "compiler/backend/codegen_llvm.hpp"
#include "compiler/backend/llvm_emitter.hpp"

namespace modc {

namespace {

using namespace llvm_emitter;

class StepEmitter : public Emitter {
public:
    using Emitter::Emitter;

    // Segment k of an optimizer's step over one weight of n elements (cpu_program.hpp: step).
    // Numbers, hyperparameters and the weight's scalars are combined in double once, before the
    // loop; the tensors are computed in T, each statement in order, kept in registers and stored
    // once at the end; the statistics are summed in double and stored after the loop. A plan
    // with row or column statistics loops over rows and columns (fan_out x fan_in, from the
    // scalars: kernels are shared by weights of one size); the others over the n elements.
    void step_segment(const step::StepPlan& plan, std::size_t k, std::int64_t n) {
        begin(KernelNames::step(k, n), llvm::Type::getVoidTy(ctx_),
              {llvm::PointerType::getUnqual(ptr_), llvm::PointerType::getUnqual(acc_)});
        plan_ = &plan;
        n_ = n;
        std::vector<Value*> buffers;
        for (int j = 0; j < plan.buffer_count(); ++j)
            buffers.push_back(b_.CreateLoad(ptr_, b_.CreateConstGEP1_64(ptr_, arg(0), static_cast<std::uint64_t>(j))));
        auto stat_buffer = [&](int s) {
            return b_.CreateBitCast(buffers[static_cast<std::size_t>(plan.stat_buffer(s))], llvm::PointerType::getUnqual(acc_));
        };
        scalars_.assign(plan.nodes.size(), nullptr);
        for (std::size_t j = 0; j < plan.nodes.size(); ++j)
            if (plan.nodes[j].scalar) scalars_[j] = step_scalar(plan.nodes[j]);
        const step::Segment& segment = plan.segments.at(k);
        Value* rows = b_.CreateFPToSI(scalar_slot(plan.const_scalar(static_cast<int>(step::WeightConst::FanOut))), i64_);
        Value* cols = b_.CreateFPToSI(scalar_slot(plan.const_scalar(static_cast<int>(step::WeightConst::FanIn))), i64_);
        Value* rows_wide = b_.CreateSIToFP(rows, acc_);
        Value* cols_wide = b_.CreateSIToFP(cols, acc_);

        // The sums: one accumulator per whole-weight statistic, one per row statistic (reset each
        // row); column statistics add into their buffer, zeroed first.
        std::map<int, Value*> sums;
        for (const auto& st : segment.stats) {
            const step::Stat& stat = plan.stats.at(static_cast<std::size_t>(st.stat));
            if (stat.axis != step::Axis::Col) {
                sums[st.stat] = accumulator(wide(0));
            } else {
                Value* out = stat_buffer(st.stat);
                loop(i64(0), cols, [&](Value* c) { b_.CreateStore(wide(0), b_.CreateGEP(acc_, out, c)); });
            }
        }

        auto element = [&](Value* i, Value* row, Value* col) {
            std::map<int, Value*> assigned;  // buffer -> its value after the statements so far
            auto read = [&](int buffer) {
                auto it = assigned.find(buffer);
                return it != assigned.end() ? it->second : load(buffers[static_cast<std::size_t>(buffer)], i);
            };
            std::function<Value*(int)> eval = [&](int id) -> Value* {
                const step::Node& node = plan.nodes.at(static_cast<std::size_t>(id));
                if (node.scalar) return narrow(scalars_[static_cast<std::size_t>(id)]);
                switch (node.kind) {
                    case step::NodeKind::Weight: return read(step::StepPlan::weight_buffer());
                    case step::NodeKind::Grad: return read(step::StepPlan::grad_buffer());
                    case step::NodeKind::Var: return read(plan.var_buffer(node.index));
                    case step::NodeKind::Dual: return read(plan.dual_out_buffer(node.index));
                    case step::NodeKind::RowStat:
                    case step::NodeKind::ColStat: {
                        const bool by_row = node.kind == step::NodeKind::RowStat;
                        Value* sum = b_.CreateLoad(acc_, b_.CreateGEP(acc_, stat_buffer(node.index), by_row ? row : col));
                        // A row's mean divides by the number of columns, a column's by the rows.
                        if (plan.stats.at(static_cast<std::size_t>(node.index)).mean)
                            sum = b_.CreateFDiv(sum, by_row ? cols_wide : rows_wide);
                        return narrow(sum);
                    }
                    default: return apply(node, node.a >= 0 ? eval(node.a) : nullptr, node.b >= 0 ? eval(node.b) : nullptr,
                                          node.c >= 0 ? eval(node.c) : nullptr);
                }
            };
            for (const auto& a : segment.assigns) {
                int buffer = a.target == step::kWeightTarget ? step::StepPlan::weight_buffer() : plan.var_buffer(a.target);
                assigned[buffer] = eval(a.value);
            }
            for (const auto& d : segment.duals) store(eval(d.value), buffers[static_cast<std::size_t>(plan.dual_in_buffer(d.dual))], i);
            for (const auto& st : segment.stats) {
                Value* v = widen(eval(st.value));
                if (plan.stats.at(static_cast<std::size_t>(st.stat)).axis == step::Axis::Col) {
                    Value* where = b_.CreateGEP(acc_, stat_buffer(st.stat), col);
                    b_.CreateStore(add(b_.CreateLoad(acc_, where), v), where);
                } else {
                    b_.CreateStore(add(get(sums[st.stat]), v), sums[st.stat]);
                }
            }
            for (const auto& [buffer, value] : assigned) store(value, buffers[static_cast<std::size_t>(buffer)], i);
        };
        if (by_rows(plan)) {
            loop(i64(0), rows, [&](Value* r) {
                for (const auto& st : segment.stats)
                    if (plan.stats.at(static_cast<std::size_t>(st.stat)).axis == step::Axis::Row) b_.CreateStore(wide(0), sums[st.stat]);
                loop(i64(0), cols, [&](Value* c) { element(b_.CreateAdd(b_.CreateMul(r, cols), c), r, c); });
                for (const auto& st : segment.stats)
                    if (plan.stats.at(static_cast<std::size_t>(st.stat)).axis == step::Axis::Row)
                        b_.CreateStore(get(sums[st.stat]), b_.CreateGEP(acc_, stat_buffer(st.stat), r));
            });
        } else {
            loop(n, [&](Value* i) { element(i, nullptr, nullptr); });
        }
        for (const auto& st : segment.stats)
            if (plan.stats.at(static_cast<std::size_t>(st.stat)).axis == step::Axis::All)
                b_.CreateStore(get(sums[st.stat]), scalar_address(plan.stat_scalar(st.stat)));
        b_.CreateRetVoid();
    }

private:
    const step::StepPlan* plan_ = nullptr;
    std::int64_t n_ = 0;
    std::vector<Value*> scalars_;

    // Row or column statistics anywhere in the plan: every pass runs by rows and columns.
    static bool by_rows(const step::StepPlan& plan) { return plan.has_axis_stats(); }

    Value* scalar_address(int slot) { return b_.CreateConstGEP1_64(acc_, arg(1), static_cast<std::uint64_t>(slot)); }
    Value* scalar_slot(int slot) { return b_.CreateLoad(acc_, scalar_address(slot)); }

    static Value* like(Value* v, double x) { return llvm::ConstantFP::get(v->getType(), x); }

    // An elementwise operation on values of one type (T in the loop, double for scalars).
    Value* apply(const step::Node& node, Value* a, Value* b, Value* c) {
        using step::NodeKind;
        auto mask = [&](Value* condition) { return b_.CreateSelect(condition, like(a, 1), like(a, 0)); };
        switch (node.kind) {
            case NodeKind::Neg: return b_.CreateFNeg(a);
            case NodeKind::Add: return add(a, b);
            case NodeKind::Sub: return b_.CreateFSub(a, b);
            case NodeKind::Mul: return mul(a, b);
            case NodeKind::Div: return b_.CreateFDiv(a, b);
            case NodeKind::Pow: return b_.CreateBinaryIntrinsic(llvm::Intrinsic::pow, a, b);
            case NodeKind::Sqrt: return sqrt(a);
            case NodeKind::Abs: return b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, a);
            case NodeKind::Sign:
                return b_.CreateSelect(b_.CreateFCmpOGT(a, like(a, 0)), like(a, 1),
                                       b_.CreateSelect(b_.CreateFCmpOLT(a, like(a, 0)), like(a, -1), like(a, 0)));
            case NodeKind::Max: return b_.CreateSelect(b_.CreateFCmpOGT(a, b), a, b);
            case NodeKind::Min: return b_.CreateSelect(b_.CreateFCmpOLT(a, b), a, b);
            case NodeKind::Lt: return mask(b_.CreateFCmpOLT(a, b));
            case NodeKind::Le: return mask(b_.CreateFCmpOLE(a, b));
            case NodeKind::Gt: return mask(b_.CreateFCmpOGT(a, b));
            case NodeKind::Ge: return mask(b_.CreateFCmpOGE(a, b));
            case NodeKind::Eq: return mask(b_.CreateFCmpOEQ(a, b));
            case NodeKind::Ne: return mask(b_.CreateFCmpUNE(a, b));
            case NodeKind::Where: return b_.CreateSelect(b_.CreateFCmpUNE(a, like(a, 0)), b, c);
            default: MODC_ASSERT(false, std::string("an operation ") + step::to_string(node.kind) + " in a step plan");
        }
        return nullptr;
    }

    Value* step_scalar(const step::Node& node) {
        auto at = [&](int id) { return id < 0 ? nullptr : scalars_.at(static_cast<std::size_t>(id)); };
        switch (node.kind) {
            case step::NodeKind::Number: return wide(node.value);
            case step::NodeKind::Hyper: return scalar_slot(node.index);
            case step::NodeKind::Step: return scalar_slot(plan_->step_scalar());
            case step::NodeKind::Const: return scalar_slot(plan_->const_scalar(node.index));
            case step::NodeKind::Stat: {
                Value* sum = scalar_slot(plan_->stat_scalar(node.index));
                return plan_->stats.at(static_cast<std::size_t>(node.index)).mean ? b_.CreateFDiv(sum, wide(static_cast<double>(n_))) : sum;
            }
            default: return apply(node, at(node.a), at(node.b), at(node.c));
        }
    }
};

}  // namespace

LlvmModule codegen_llvm_step(const step::StepPlan& plan, const std::vector<std::int64_t>& element_counts,
                             ElementType type) {
    LlvmModule out = empty_module("modc_step_" + plan.optimizer + "_" + to_string(type));
    std::set<std::int64_t> sizes(element_counts.begin(), element_counts.end());
    for (std::size_t k = 0; k < plan.segments.size(); ++k)
        for (std::int64_t n : sizes) StepEmitter(*out.module, type).step_segment(plan, k, n);
    return verified(std::move(out));
}

}  // namespace modc
