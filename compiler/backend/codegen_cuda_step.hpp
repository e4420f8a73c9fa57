// compiler/backend/codegen_cuda_step: an optimizer's step plan (program/step_plan.hpp) as CUDA
// C++ for NVRTC, the same passes as codegen_llvm_step: one kernel per segment k and distinct
// element count n among the weights (KernelNames::step: step_s<k>_n<n>), in that order,
//
//   extern "C" __global__ void __launch_bounds__(block) step_s<k>_n<n>(
//       T* b0, const T* b1, T* b2, ..., const T* b<B-1>, double h0, ..., double h<H-1>)
//
// (every pointer __restrict__). The parameters are the same for every kernel of a program, so
// that a runtime launches any of them with one argument list: the plan's B = buffer_count()
// buffers of one weight in StepPlan order (W, grad, each variable, each dualizer input, each
// dualizer output), every one of them whether or not the segment touches it, then the H
// hyperparameters by value (a learning-rate schedule changes them every step at no cost). The
// buffers no kernel writes are const T*: grad, and the dualizer outputs (the dualizer writes
// them); the others are T*. Each kernel is a grid-stride loop over its n elements, correct for
// any grid; a runtime launches it with `block` threads and min(ceil(n / block), max_grid) blocks.
//
// As in codegen_llvm_step: numbers and hyperparameters are combined in double once per thread,
// before the loop (pow for ^), and narrowed to T where a tensor uses them; tensors are computed
// in T, the statements in order, each buffer read at most once per element (a read after an
// assignment in the same segment sees the assigned value); then the dualizer inputs are stored,
// then every assigned buffer once. The step plan has no source locations, so unlike
// codegen_cuda's kernels these carry no #line; a comment before each kernel gives its statements.
// Like codegen_cuda's source it includes no header (it uses pow besides what that uses): NVRTC
// compiles it as it is, and the cuda-sim backend compiles the very same text with
// runtime/cuda/sim/cuda_host.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/backend/codegen_cuda.hpp"
#include "program/cuda_step_program.hpp"
#include "program/step_plan.hpp"

namespace modc::cuda {

// Throws Unsupported for BF16 storage (the step runs on f32 or f64 weights).
StepProgram codegen_cuda_step(const step::StepPlan& plan, const std::vector<std::int64_t>& elements,
                              const CudaOptions& options = {});

}  // namespace modc::cuda
