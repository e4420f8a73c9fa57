// The CUDA form of an optimizer's step: what compiler/backend/codegen_cuda_step writes and
// runtime/cuda/gpu_stepper runs (see codegen_cuda_step.hpp for the kernels' signature).
#pragma once
#include <string>
#include <vector>

#include "program/cpu_program.hpp"  // ElementType, KernelNames

namespace modc::cuda {

struct StepProgram {
    std::string optimizer;
    ElementType type = ElementType::F32;
    std::string source;                // CUDA C++
    std::vector<std::string> kernels;  // every kernel the source defines (KernelNames::step), in order
    unsigned block = 256;              // threads per block of every kernel
    unsigned max_grid = 1024;          // blocks at most (the grid-stride loop covers the rest)
};

}  // namespace modc::cuda
