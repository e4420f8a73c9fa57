// runtime/cpu/stepper: runs an optimizer's step plan (program/step_plan.hpp) on the CPU, in
// place: the caller's weights are updated, and the state variables live here, zero before the
// first step. The segments' elementwise passes are JIT-compiled kernels (KernelNames::step);
// between them the network's dualizer runs on the buffers the passes filled.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "program/cpu_program.hpp"
#include "program/step_plan.hpp"
#include "runtime/cpu/jit.hpp"

namespace modc::cpu {

template <class T>
class Stepper {
public:
    // Applies the network's duality map: inputs[i] -> outputs[i] for weight i.
    using Dualize = std::function<void(const T* const* inputs, T* const* outputs)>;

    // The numbers of one weight that a plan reads (step_plan.hpp: WeightConst order).
    using Constants = std::array<double, step::kWeightConsts>;

    // elements[i]: the size of weight i, constants[i] its numbers; kernels: codegen_llvm_step(plan,
    // elements, T's type).
    Stepper(step::StepPlan plan, std::vector<std::int64_t> elements, std::vector<Constants> constants,
            LlvmModule kernels, Dualize dualize);
    ~Stepper();
    Stepper(const Stepper&) = delete;
    Stepper& operator=(const Stepper&) = delete;

    // One step: weights[i] and grads[i] are weight i's tensors; hypers holds a value for each
    // of the plan's hyperparameters, in order; step is the step count (1 on the first step).
    void step(T* const* weights, const T* const* grads, const double* hypers, long long step);

    const step::StepPlan& plan() const { return plan_; }
    // Variable v's tensor for weight i (state variables carry over between steps).
    T* var(int v, std::size_t weight) { return vars_.at(static_cast<std::size_t>(v)).at(weight).data(); }
    void zero_state();

private:
    using Kernel = void(T* const* buffers, double* scalars);
    step::StepPlan plan_;
    std::vector<std::int64_t> elements_;
    std::unique_ptr<Jit> jit_;
    Dualize dualize_;
    std::vector<std::vector<Kernel*>> kernels_;                 // [segment][weight]
    std::vector<std::vector<std::vector<T>>> vars_;             // [variable][weight]
    std::vector<std::vector<std::vector<T>>> in_, out_;         // [dualize call][weight]
    std::vector<std::vector<double>> scalars_;                  // [weight][plan's scalar]
    std::vector<std::vector<std::vector<double>>> axis_sums_;   // [row or column statistic][weight]
};

extern template class Stepper<float>;
extern template class Stepper<double>;

}  // namespace modc::cpu
