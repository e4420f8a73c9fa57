// compiler/backend/codegen_cuda_step: an optimizer's step plan (program/step_plan.hpp) as CUDA
// C++ for NVRTC, the same passes as codegen_llvm_step: one kernel per segment and distinct
// element count n among the weights,
//
//   extern "C" __global__ void step_s<k>_n<n>(T* b0, ..., T* b<B-1>, double h0, ..., double h<H-1>)
//
// with the plan's buffers of one weight in StepPlan order (W, grad, each variable, each dualizer
// input, each dualizer output) and the hyperparameters by value (a learning-rate schedule changes
// them every step at no cost), a grid-stride loop over the n elements. Like codegen_cuda's
// source it includes no header: NVRTC compiles it as it is, and the host tests compile the very
// same text with tests/cuda_host/cuda_host.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/backend/codegen_cuda.hpp"
#include "program/step_plan.hpp"

namespace modc::cuda {

struct StepProgram {
    std::string optimizer;
    ElementType type = ElementType::F32;
    std::string source;                // CUDA C++
    std::vector<std::string> kernels;  // every kernel the source defines (KernelNames::step), in order
    unsigned block = 256;              // threads per block of every kernel
    unsigned max_grid = 1024;          // blocks at most (the grid-stride loop covers the rest)
};

// Throws Unsupported for BF16 storage (the step runs on f32 or f64 weights).
StepProgram codegen_cuda_step(const step::StepPlan& plan, const std::vector<std::int64_t>& elements,
                              const CudaOptions& options = {});

}  // namespace modc::cuda
