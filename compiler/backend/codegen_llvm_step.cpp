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
