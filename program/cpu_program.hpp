// The CPU program: a kernel plan plus one LLVM module of generated kernels, named by group,
// step and member as below. compiler/backend/codegen_llvm writes the module, runtime/cpu
// JIT-compiles it and calls the kernels by these names.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace modc {

enum class ElementType { F32, F64 };
const char* to_string(ElementType t);

// The generated functions, by group g, step s and member j. Signatures (T = float or double):
//   normalize    void(const T* grad, T* X, i64 slice)  X = G_slice / (||G_slice||_F * ns + eps), transposed if needed
//   symmetrize   void(T* A)                           copies A's upper triangle into its lower
//   poly         void(T* B, const T* A, const T* AA)  upper triangle of B = b A + c AA
//                                                     (Gram groups: P = a I + b A + c AA)
//   axpy         void(T* Y, const T* X)               Y = a X (not in Gram groups)
//   change       double(const T* X, const T* Y)       ||Y - X||_F / ||X||_F
//   finish       void(T* update, const T* X, i64 slice)  update_slice = scale * X (transposed back)
//   closed       void(T* update, const T* grad, T* scratch)  a closed-form map with its scale
// and for an optimizer's step plan (program/step_plan.hpp), by segment k and element count n:
//   step         void(T* const* buffers, const double* hypers)  segment k's pass over one weight
//                                                     of n elements (StepPlan::buffer_count() buffers)
struct KernelNames {
    static std::string normalize(std::size_t g);
    static std::string symmetrize(std::size_t g);
    static std::string poly(std::size_t g, std::size_t s);
    static std::string axpy(std::size_t g, std::size_t s);
    static std::string change(std::size_t g);
    static std::string finish(std::size_t g, std::size_t j);
    static std::string closed(std::size_t g, std::size_t j);
    static std::string step(std::size_t k, std::int64_t n);
};

struct LlvmModule {
    std::unique_ptr<llvm::LLVMContext> context;
    std::unique_ptr<llvm::Module> module;
    LlvmModule();
    LlvmModule(LlvmModule&&) noexcept;
    LlvmModule& operator=(LlvmModule&&) noexcept;
    ~LlvmModule();
};

}  // namespace modc
