#include "runtime/cpu/products.hpp"

#include <cblas.h>

#include <cstdint>
#include <type_traits>

#include "support/bf16.hpp"
#include "support/diagnostics.hpp"

namespace modc::cpu {

const char* to_string(MatmulLibrary library) { return library == MatmulLibrary::OneDnn ? "onednn" : "openblas"; }

namespace {

bool onednn_has_avx512() {
    static const bool has = [] {
        auto isa = dnnl::get_effective_cpu_isa();
        return isa == dnnl::cpu_isa::avx512_core || isa == dnnl::cpu_isa::avx512_core_vnni ||
               isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
    }();
    return has;
}

// C = X X^T, upper triangle (X is m x k, row-major).
void syrk(int m, int k, const float* x, float* c) {
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, k, 1.0f, x, k, 0.0f, c, m);
}
void syrk(int m, int k, const double* x, double* c) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, k, 1.0, x, k, 0.0, c, m);
}
// C = A B + beta C, A symmetric m x m (upper triangle read), B and C m x n.
void symm(int m, int n, const float* a, const float* b, float beta, float* c) {
    cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, m, n, 1.0f, a, m, b, n, beta, c, n);
}
void symm(int m, int n, const double* a, const double* b, double beta, double* c) {
    cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, m, n, 1.0, a, m, b, n, beta, c, n);
}
// C = A B + beta C (A m x k, B k x n).
void gemm(int m, int n, int k, const float* a, const float* b, float beta, float* c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, beta, c, n);
}
void gemm(int m, int n, int k, const double* a, const double* b, double beta, double* c) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0, a, k, b, n, beta, c, n);
}

void round_to_bf16(const float* in, std::uint16_t* out, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) out[i] = f32_to_bf16(in[i]);
}

}  // namespace

void Bf16Buffers::fit(std::int64_t count) {
    auto size = static_cast<std::size_t>(count);
    if (left.size() < size) left.resize(size);
    if (right.size() < size) right.resize(size);
}

MatmulLibrary matmul_library(std::int64_t m, kp::Precision precision, bool f64) {
    if (f64) return MatmulLibrary::OpenBlas;
    if (precision == kp::Precision::BF16) return MatmulLibrary::OneDnn;
    return onednn_has_avx512() && m >= kOneDnnMinRows ? MatmulLibrary::OneDnn : MatmulLibrary::OpenBlas;
}

// The m x m products of Gram Newton-Schulz sum over k in chunks (onednn_matmul.hpp, k_chunk).
constexpr std::int64_t kSquareChunk = 128;

OneDnnGroupPrimitives::OneDnnGroupPrimitives(std::int64_t m, std::int64_t n, onednn::Input input, int threads)
    : gram_wide_(onednn::cpu_engine(), m, n, input, threads),
      gram_square_(onednn::cpu_engine(), m, m, input, threads, kSquareChunk),
      multiply_(onednn::cpu_engine(), {m, m, m, m, m, m, false, false, kSquareChunk}, input, threads),
      apply_(onednn::cpu_engine(), {m, n, m, m, n, n, false, false}, input, threads),
      apply_accumulate_(onednn::cpu_engine(), {m, n, m, m, n, n, false, true}, input, threads) {}

template <class T>
struct Products<T>::OneDnn {
    dnnl::stream stream;
    onednn::UpperProduct::Call gram_wide, gram_square;
    onednn::Product::Call multiply, apply, apply_accumulate;
    Bf16Buffers* bf16 = nullptr;  // null in f32

    // The operands as the primitives take them: as they are in f32, rounded to bf16 in bf16.
    const void* left(const float* x, std::int64_t count) { return input(bf16 ? &bf16->left : nullptr, x, count); }
    const void* right(const float* x, std::int64_t count) { return input(bf16 ? &bf16->right : nullptr, x, count); }
    static const void* input(std::vector<std::uint16_t>* buffer, const float* x, std::int64_t count) {
        if (!buffer) return x;
        MODC_ASSERT(static_cast<std::int64_t>(buffer->size()) >= count, "bf16 buffer too small");
        round_to_bf16(x, buffer->data(), count);
        return buffer->data();
    }
};

template <class T>
Products<T>::Products(std::int64_t m, std::int64_t n) : m_(m), n_(n) {}

template <class T>
Products<T>::Products(std::int64_t m, std::int64_t n, const OneDnnGroupPrimitives& p, Bf16Buffers* bf16)
    : m_(m), n_(n) {
    MODC_ASSERT((std::is_same_v<T, float>), "oneDNN runs f32 groups only");
    onednn_ = std::make_shared<OneDnn>();
    auto& d = *onednn_;
    d.stream = dnnl::stream(onednn::cpu_engine());
    d.gram_wide = p.gram_wide_.bind();
    d.gram_square = p.gram_square_.bind();
    d.multiply = p.multiply_.bind();
    d.apply = p.apply_.bind();
    d.apply_accumulate = p.apply_accumulate_.bind();
    d.bf16 = bf16;
    if (bf16) bf16->fit(m * n);
}

template <class T>
void Products<T>::gram(const T* x, T* c) {
    if constexpr (std::is_same_v<T, float>) {
        if (onednn_) {
            const void* in = onednn_->left(x, m_ * n_);
            onednn_->gram_wide(onednn_->stream, in, in, c);
            return;
        }
    }
    syrk(static_cast<int>(m_), static_cast<int>(n_), x, c);
}

template <class T>
void Products<T>::square_gram(const T* a, T* c) {
    if constexpr (std::is_same_v<T, float>) {
        if (onednn_) {
            const void* in = onednn_->left(a, m_ * m_);
            onednn_->gram_square(onednn_->stream, in, in, c);
            return;
        }
    }
    syrk(static_cast<int>(m_), static_cast<int>(m_), a, c);
}

template <class T>
void Products<T>::symmetric(const T* a, const T* b, T* c) {
    if constexpr (std::is_same_v<T, float>) {
        if (onednn_) {
            // A B = A B^T (B symmetric), itself symmetric since A and B commute.
            const void* left = onednn_->left(a, m_ * m_);
            const void* right = onednn_->right(b, m_ * m_);
            onednn_->gram_square(onednn_->stream, left, right, c);
            return;
        }
    }
    symm(static_cast<int>(m_), static_cast<int>(m_), a, b, T(0), c);
}

template <class T>
void Products<T>::multiply(const T* a, const T* b, T* c) {
    if constexpr (std::is_same_v<T, float>) {
        if (onednn_) {
            const void* left = onednn_->left(a, m_ * m_);
            const void* right = onednn_->right(b, m_ * m_);
            onednn_->multiply(onednn_->stream, left, right, c);
            return;
        }
    }
    symm(static_cast<int>(m_), static_cast<int>(m_), a, b, T(0), c);
}

template <class T>
void Products<T>::apply(const T* a, const T* x, T* c, bool accumulate, bool symmetric) {
    if constexpr (std::is_same_v<T, float>) {
        if (onednn_) {
            const void* left = onednn_->left(a, m_ * m_);
            const void* right = onednn_->right(x, m_ * n_);
            (accumulate ? onednn_->apply_accumulate : onednn_->apply)(onednn_->stream, left, right, c);
            return;
        }
    }
    auto m = static_cast<int>(m_), n = static_cast<int>(n_);
    if (symmetric)
        symm(m, n, a, x, accumulate ? T(1) : T(0), c);
    else
        gemm(m, n, m, a, x, accumulate ? T(1) : T(0), c);
}

template class Products<float>;
template class Products<double>;

}  // namespace modc::cpu
