// tensor_cores.h: cublasGemmStridedBatchedEx as the GPU computes it, for the host stand-ins of
// cuBLAS (fake_cuda.cpp, and run_on_host in tests/unit/test_cuda.cpp). The inputs are what the
// tensor cores multiply: bf16 ones widened to f32 (exact), f32 ones under
// CUBLAS_COMPUTE_32F_FAST_TF32 rounded to tf32 (10 mantissa bits; to nearest, ties away from
// zero, as cvt.rna.tf32.f32); then an f32 gemm in column-major mode with the same parameters,
// whose result a bf16 C gets rounded (to nearest even). Tensor cores accumulate in f32 as well,
// so host and GPU differ by the order of the sums only.
#pragma once
#include <cblas.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace modc_fake {

enum class Inputs { F32, TF32, BF16 };

inline float round_tf32(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;  // Inf and NaN as they are
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// `count` inputs from `p` (bf16 bits, or f32), as f32 values the tensor cores see.
inline std::vector<float> widen(const void* p, std::int64_t count, Inputs in) {
    std::vector<float> out(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
        if (in == Inputs::BF16) {
            std::uint32_t u = static_cast<std::uint32_t>(static_cast<const std::uint16_t*>(p)[i]) << 16;
            std::memcpy(&out[static_cast<std::size_t>(i)], &u, sizeof u);
        } else {
            float v = static_cast<const float*>(p)[i];
            out[static_cast<std::size_t>(i)] = in == Inputs::TF32 ? round_tf32(v) : v;
        }
    }
    return out;
}

inline std::uint16_t round_bf16(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // NaN stays NaN
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// C_i = alpha op(A_i) op(B_i) + beta C_i for each of `batch`, column-major; C in f32, or in
// bf16 where c_bf16.
inline void gemm_ex(bool ta, bool tb, int m, int n, int k, float alpha, const void* a, int lda, long long sa, const void* b,
                    int ldb, long long sb, float beta, void* c, bool c_bf16, int ldc, long long sc, int batch, Inputs in) {
    const std::int64_t size = in == Inputs::BF16 ? 2 : 4;
    // The elements a column-major op(A) (m x k) or op(B) (k x n) spans.
    const std::int64_t a_span = ta ? std::int64_t(lda) * (m - 1) + k : std::int64_t(lda) * (k - 1) + m;
    const std::int64_t b_span = tb ? std::int64_t(ldb) * (k - 1) + n : std::int64_t(ldb) * (n - 1) + k;
    for (int i = 0; i < batch; ++i) {
        auto wa = widen(static_cast<const char*>(a) + i * sa * size, a_span, in);
        auto wb = widen(static_cast<const char*>(b) + i * sb * size, b_span, in);
        if (!c_bf16) {
            cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                        wa.data(), lda, wb.data(), ldb, beta, static_cast<float*>(c) + i * sc, ldc);
            continue;
        }
        std::uint16_t* ci = static_cast<std::uint16_t*>(c) + i * sc;
        const std::int64_t c_span = std::int64_t(ldc) * (n - 1) + m;
        auto wc = widen(ci, c_span, Inputs::BF16);
        cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, wa.data(),
                    lda, wb.data(), ldb, beta, wc.data(), ldc);
        for (int col = 0; col < n; ++col)
            for (int row = 0; row < m; ++row) ci[row + std::int64_t(col) * ldc] = round_bf16(wc[row + std::size_t(col) * ldc]);
    }
}

}  // namespace modc_fake
