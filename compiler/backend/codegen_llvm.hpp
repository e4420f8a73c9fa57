// compiler/backend/codegen_llvm: the kernel plan's non-matmul work as LLVM IR, one function per
// kernel, every shape, stride and scale a constant, loops simple enough for the vectorizer.
// The runtime (runtime/cpu) JIT-compiles the module and calls BLAS for the matmuls between.
#pragma once
#include <memory>
#include <string>

#include "program/cpu_program.hpp"
#include "program/kernel_plan.hpp"

namespace modc {

LlvmModule codegen_llvm(const kp::KernelPlan& plan, ElementType type);
std::string print_llvm(const kp::KernelPlan& plan, ElementType type);

}  // namespace modc
