// runtime/cpu/products: the matmuls of one orthogonalising group (m x n matrices, m <= n), on
// OpenBLAS or oneDNN, in the plan's precision.
//
// Which library (matmul_library below, from bench/cpu_matmul.cpp's measurements, recorded in
// docs/performance.md): oneDNN's f32 kernels use AVX-512 where OpenBLAS 0.3.21's run at AVX2
// speed, and it is the only one of the two with bf16 inputs; OpenBLAS keeps f64, the matrices
// too small for oneDNN's per-call overhead, and machines where oneDNN has no AVX-512.
//
// oneDNN has no syrk or symm: a symmetric result is computed as the upper block triangle of
// its row blocks (onednn_matmul.hpp, UpperProduct), a symmetric matrix times X as a full product.
// In bf16 the inputs of every product are rounded to bf16 (nearest even, support/bf16.hpp) into
// buffers of the thread's own, each once per step, and the products accumulate in f32.
//
// Contract for the callers (runtime/cpu/dualizer.cpp): every matrix passed in is whole (a
// symmetric one with both triangles); a symmetric result holds its upper triangle only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "program/kernel_plan.hpp"
#include "runtime/cpu/onednn_matmul.hpp"

namespace modc::cpu {

enum class MatmulLibrary { OpenBlas, OneDnn };
const char* to_string(MatmulLibrary library);

// The library for a group's products: bf16 always oneDNN; f32 oneDNN when it has AVX-512 and
// the Gram side m is at least kOneDnnMinRows; f64 always OpenBLAS.
inline constexpr std::int64_t kOneDnnMinRows = 32;
MatmulLibrary matmul_library(std::int64_t m, kp::Precision precision, bool f64);

// The oneDNN scratchpad a thread needs for a group's products (m x n, run with `threads`, 0:
// all), 0 where the group runs on OpenBLAS.
std::size_t scratchpad_bytes(std::int64_t m, std::int64_t n, kp::Precision precision, bool f64, int threads);

// Empty when oneDNN can run bf16 products on this CPU, else why not (e.g. "oneDNN sees
// avx512_core, and bf16 matmuls need AVX512-BF16 or AMX"): without native bf16 instructions it
// either refuses the primitives or emulates them far slower than f32. Callers refuse
// --precision bf16 up front with it (library/modc.cpp).
std::string bf16_unavailable();
// Tests: the ISA bf16_unavailable() takes oneDNN to see (nullopt: ask oneDNN). The process's
// own ISA can only be lowered before oneDNN's first use (ONEDNN_MAX_CPU_ISA, as the lit test does).
void override_onednn_isa_for_testing(std::optional<dnnl::cpu_isa> isa);

// out (m x m, whole) = the upper triangle of a (row-major, the rest not read), rounded to bf16
// (nearest even) and mirrored. A symmetric operand's rounding needs only the triangle the
// elementwise kernels write, which saves them a strided f32 mirroring pass (symmetrize).
void round_symmetric_to_bf16(const float* a, std::uint16_t* out, std::int64_t m);

// A group's oneDNN primitives for one thread count (created once, shared by the threads).
class OneDnnGroupPrimitives {
public:
    // update_scales: the coefficients a of the group's direct Newton-Schulz steps; with bf16
    // inputs each gets a primitive for Products::update (X = a X + B X in place).
    OneDnnGroupPrimitives(std::int64_t m, std::int64_t n, onednn::Input input, int threads,
                          const std::vector<double>& update_scales = {});
    // The scratchpad their products need, the most of any one (a thread's products run one at
    // a time on one buffer), from the primitives' descriptors: the dualizer sizes its buffer and
    // the memory estimate (--memory-limit) counts it with this.
    static std::size_t scratchpad_bytes(std::int64_t m, std::int64_t n, onednn::Input input, int threads);

private:
    template <class T>
    friend class Products;
    onednn::UpperProduct gram_wide_, gram_square_;  // X X^T (k = n) and A B^T (k = m)
    onednn::Product multiply_;                      // C = A B (m x m)
    onednn::Product apply_, apply_accumulate_;      // C = A X and C += A X
    std::vector<std::pair<double, onednn::Product>> update_;  // C = A X + a C, by a (bf16)
};

// One thread's bf16 copies of the operands, shared by its groups (as large as the largest needs).
struct Bf16Buffers {
    std::vector<std::uint16_t> left, right;
    void fit(std::int64_t count);
};

// One thread's products for one group.
template <class T>
class Products {
public:
    // OpenBLAS (primitives null, or T = double).
    Products(std::int64_t m, std::int64_t n);
    // oneDNN: primitives of the group for the thread count this thread runs it with; the
    // thread's scratchpad (at least OneDnnGroupPrimitives::scratchpad_bytes); bf16: the thread's
    // buffers when the primitives take bf16 inputs (null for f32).
    Products(std::int64_t m, std::int64_t n, const OneDnnGroupPrimitives& primitives, void* scratchpad, Bf16Buffers* bf16);

    // bf16 (reads_upper_triangle()): the symmetric operands below (square_gram's A, both of
    // symmetric's, apply's A when symmetric, update's B) are read from their upper triangle only,
    // mirrored as they are rounded, so the caller need not mirror them in f32 first.
    bool reads_upper_triangle() const;

    void gram(const T* x, T* c);                  // C = X X^T, X m x n (upper triangle)
    void square_gram(const T* a, T* c);           // C = A A^T, A m x m (upper triangle)
    // C = A B, A and B m x m symmetric, commuting (upper triangle); bf16 reads both from their upper triangles.
    void symmetric(const T* a, const T* b, T* c);
    void multiply(const T* a, const T* b, T* c);  // C = A B, A m x m symmetric, B m x m (whole)
    // C (+)= A X, A m x m (symmetric: OpenBLAS reads its upper triangle only), X m x n.
    // x_of_last_gram: X is what the last gram() read, unchanged since, and no other product ran
    // in between that reads a right-hand operand: bf16 reuses its rounded copy (one rounding
    // pass of X per step, not two).
    void apply(const T* a, const T* x, T* c, bool accumulate, bool symmetric, bool x_of_last_gram = false);
    // bf16 only (updates_in_place()): X = a X + B X in place, the step's end in one product.
    // B m x m symmetric (its upper triangle read); X is what the last gram() read, unchanged
    // since: the product reads its rounded copy, so oneDNN can add a X (its sum post-op) into X
    // itself. This saves the pass Y = a X, and the sum's reads of it (docs/performance.md).
    // x_of_last_gram false: other products ran since, and X is rounded again.
    bool updates_in_place() const;
    void update(const T* b, T* x, double a, bool x_of_last_gram = true);

private:
    struct OneDnn;
    std::int64_t m_, n_;
    std::shared_ptr<OneDnn> onednn_;  // null: OpenBLAS
};

extern template class Products<float>;
extern template class Products<double>;

}  // namespace modc::cpu
