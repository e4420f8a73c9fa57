// runtime/cuda/gpu_stepper: runs an optimizer's step (program/cuda_step_program.hpp, the
// kernels of compiler/backend/codegen_cuda_step) on the GPU, in place: the caller's weights are
// updated at their device pointers, and every variable of the step (state and temporaries) and
// the dualizer's inputs and outputs live in device memory here, the state zero before the first
// step. Per segment, one launch per weight (the hyperparameters passed by value, so a schedule
// changes them every step at no cost); between segments, the network's dualizer through its
// device path (GpuDualizer::run_device). Everything is enqueued on the caller's stream.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "program/cuda_step_program.hpp"
#include "program/step_plan.hpp"
#include "runtime/cuda/gpu.hpp"

namespace modc::cuda {

class GpuStepper {
public:
    // The numbers of one weight that a plan reads (step_plan.hpp: WeightConst order).
    using Constants = std::array<double, step::kWeightConsts>;

    // plan: the step plan `program` was generated from; elements[i]: the size of weight i,
    // constants[i] its numbers; dualizer: the network's duality map on the same device (it must
    // outlive the stepper). Compiles and loads the kernels, allocates and zeroes the variables.
    // Throws GpuError.
    GpuStepper(StepProgram program, step::StepPlan plan, std::vector<std::int64_t> elements,
               std::vector<Constants> constants, GpuDualizer& dualizer, const GpuOptions& options = {});
    ~GpuStepper();
    GpuStepper(const GpuStepper&) = delete;
    GpuStepper& operator=(const GpuStepper&) = delete;

    // One step, enqueued on `stream` (null: the legacy default stream): weights[i] and grads[i]
    // are device pointers to weight i's tensors (row-major, the program's type); hypers holds a
    // value for each of the plan's hyperparameters, in order, and step is the step count (1 on
    // the first step). Returns without waiting for the
    // GPU, unless the dualizer's schedule checks convergence (cubic: see GpuDualizer::run_device).
    void step_device(void* const* weights, const void* const* grads, const double* hypers, long long step, CUstream stream);
    // The same with host pointers: the tensors are copied to device buffers of the stepper's own
    // (allocated on the first such step), stepped there, and the weights copied back; waits.
    void step_host(void* const* weights, const void* const* grads, const double* hypers, long long step);

    // Variable v of weight i (plan numbering) copied to or from host memory (elements[i] values),
    // after every step enqueued so far; both wait for the copy. zero_state zeroes every state
    // variable, after the steps enqueued so far too.
    void read_var(int v, std::size_t weight, void* data) const;
    void write_var(int v, std::size_t weight, const void* data);
    void zero_state();

    const step::StepPlan& plan() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace modc::cuda
