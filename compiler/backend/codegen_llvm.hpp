// compiler/backend/codegen_llvm: the kernel plan's non-matmul work as LLVM IR, one function per
// kernel, every shape, stride and scale a constant, loops simple enough for the vectorizer.
// The runtime (runtime/cpu) JIT-compiles the module and calls BLAS for the matmuls between.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "program/cpu_program.hpp"
#include "program/kernel_plan.hpp"
#include "program/step_plan.hpp"

namespace modc {

LlvmModule codegen_llvm(const kp::KernelPlan& plan, ElementType type);

// An optimizer's step (program/step_plan.hpp): one function per segment and distinct element
// count among the weights (KernelNames::step), for runtime/cpu's Stepper.
LlvmModule codegen_llvm_step(const step::StepPlan& plan, const std::vector<std::int64_t>& element_counts,
                             ElementType type);

// A module as text, before optimisation.
std::string print_llvm(LlvmModule module);

}  // namespace modc
