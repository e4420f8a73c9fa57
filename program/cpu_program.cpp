#include "program/cpu_program.hpp"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

namespace modc {

const char* to_string(ElementType t) { return t == ElementType::F32 ? "f32" : "f64"; }

std::string KernelNames::normalize(std::size_t g) { return "g" + std::to_string(g) + "_normalize"; }
std::string KernelNames::symmetrize(std::size_t g) { return "g" + std::to_string(g) + "_symmetrize"; }
std::string KernelNames::poly(std::size_t g, std::size_t s) { return "g" + std::to_string(g) + "_s" + std::to_string(s) + "_poly"; }
std::string KernelNames::axpy(std::size_t g, std::size_t s) { return "g" + std::to_string(g) + "_s" + std::to_string(s) + "_axpy"; }
std::string KernelNames::change(std::size_t g) { return "g" + std::to_string(g) + "_change"; }
std::string KernelNames::finish(std::size_t g, std::size_t j) { return "g" + std::to_string(g) + "_m" + std::to_string(j) + "_finish"; }
std::string KernelNames::step(std::size_t k, std::int64_t n) { return "step_s" + std::to_string(k) + "_n" + std::to_string(n); }
std::string KernelNames::closed(std::size_t g, std::size_t j) { return "g" + std::to_string(g) + "_m" + std::to_string(j) + "_map"; }

LlvmModule::LlvmModule() = default;
LlvmModule::LlvmModule(LlvmModule&&) noexcept = default;
LlvmModule& LlvmModule::operator=(LlvmModule&&) noexcept = default;
LlvmModule::~LlvmModule() = default;

}  // namespace modc
