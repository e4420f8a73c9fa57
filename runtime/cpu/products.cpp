#include "runtime/cpu/products.hpp"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "support/bf16.hpp"
#include "support/diagnostics.hpp"

namespace modc::cpu {

const char* to_string(MatmulLibrary library) { return library == MatmulLibrary::OneDnn ? "onednn" : "openblas"; }

namespace {

std::optional<dnnl::cpu_isa> isa_override;

dnnl::cpu_isa onednn_isa() {
    static const dnnl::cpu_isa seen = dnnl::get_effective_cpu_isa();
    return isa_override ? *isa_override : seen;
}

bool onednn_has_avx512() {
    const dnnl::cpu_isa isa = onednn_isa();
    return isa == dnnl::cpu_isa::avx512_core || isa == dnnl::cpu_isa::avx512_core_vnni ||
           isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

const char* isa_name(dnnl::cpu_isa isa) {
    switch (isa) {
        case dnnl::cpu_isa::sse41: return "sse41";
        case dnnl::cpu_isa::avx: return "avx";
        case dnnl::cpu_isa::avx2: return "avx2";
        case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
        case dnnl::cpu_isa::avx512_core: return "avx512_core";
        case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
        case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
        case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
        default: return "an ISA without AVX-512";
    }
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

void round_to_bf16_scalar(const float* in, std::uint16_t* out, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) out[i] = f32_to_bf16(in[i]);
}

// AVX512-BF16's vcvtneps2bf16, 16 at a time: 8x the scalar loop (0.16 ms against 1.3 ms for a
// 768 x 3072 X). Nearest even, as f32_to_bf16; it reads subnormal inputs as zero, which no
// product of a normalised iterate notices.
__attribute__((target("avx512f,avx512bf16"))) void round_to_bf16_avx512(const float* in, std::uint16_t* out,
                                                                          std::int64_t count) {
    std::int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m256bh rounded = _mm512_cvtneps_pbh(_mm512_loadu_ps(in + i));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), reinterpret_cast<__m256i>(rounded));
    }
    round_to_bf16_scalar(in + i, out + i, count - i);
}

void round_to_bf16(const float* in, std::uint16_t* out, std::int64_t count) {
    static const bool native = __builtin_cpu_supports("avx512bf16");
    (native ? round_to_bf16_avx512 : round_to_bf16_scalar)(in, out, count);
}

// dst (8 x 8, row stride ds) = the transpose of src (8 x 8, row stride ss), 16-bit elements (SSE2).
void transpose_8x8(const std::uint16_t* src, std::int64_t ss, std::uint16_t* dst, std::int64_t ds) {
    __m128i r[8], t[8], u[8];
    for (int k = 0; k < 8; ++k) r[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k * ss));
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm_unpacklo_epi16(r[k], r[k + 1]);  // rows k, k+1 interleaved, columns 0-3
        t[k + 1] = _mm_unpackhi_epi16(r[k], r[k + 1]);  // columns 4-7
    }
    for (int k = 0; k < 2; ++k)
        for (int h = 0; h < 2; ++h) {  // from rows 0-3 (h = 0) and 4-7 (h = 1)
            u[4 * h + 2 * k] = _mm_unpacklo_epi32(t[4 * h + k], t[4 * h + 2 + k]);
            u[4 * h + 2 * k + 1] = _mm_unpackhi_epi32(t[4 * h + k], t[4 * h + 2 + k]);
        }
    for (int k = 0; k < 4; ++k) {  // u[k] holds columns 2k, 2k+1 of rows 0-3, u[4 + k] of rows 4-7
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * k * ds), _mm_unpacklo_epi64(u[k], u[4 + k]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (2 * k + 1) * ds), _mm_unpackhi_epi64(u[k], u[4 + k]));
    }
}

}  // namespace

void round_symmetric_to_bf16(const float* a, std::uint16_t* out, std::int64_t m) {
    for (std::int64_t i = 0; i < m; ++i) round_to_bf16(a + i * m + i, out + i * m + i, m - i);
    // The 8 x 8 blocks above the diagonal, transposed, in tiles of 64 that stay in L1 (a whole
    // column of 768 rows would not); then the diagonal blocks and what lies past the last block.
    const std::int64_t blocked = m / 8 * 8;
    constexpr std::int64_t tile = 64;
    for (std::int64_t ti = 0; ti < blocked; ti += tile)
        for (std::int64_t tj = ti; tj < blocked; tj += tile)
            for (std::int64_t bi = ti; bi < std::min(ti + tile, blocked); bi += 8)
                for (std::int64_t bj = std::max(tj, bi + 8); bj < std::min(tj + tile, blocked); bj += 8)
                    transpose_8x8(out + bi * m + bj, m, out + bj * m + bi, m);
    for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = i + 1; j < std::min(i / 8 * 8 + 8, m); ++j) out[j * m + i] = out[i * m + j];
        for (std::int64_t j = std::max(blocked, i / 8 * 8 + 8); j < m; ++j) out[j * m + i] = out[i * m + j];
    }
}

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

std::string bf16_unavailable() {
    const dnnl::cpu_isa isa = onednn_isa();
    if (isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx) return {};
    return std::string("oneDNN sees ") + isa_name(isa) + ", and bf16 matmuls need AVX512-BF16 or AMX";
}

void override_onednn_isa_for_testing(std::optional<dnnl::cpu_isa> isa) { isa_override = isa; }

namespace {

// The m x m products of Gram Newton-Schulz sum over k in chunks in f32 (onednn_matmul.hpp,
// k_chunk). Not with bf16 inputs: there the f32 sum's rounding is far below the inputs' (2^-9),
// and the chunks' k = 128 takes oneDNN off its brgemm kernels onto gemm:jit, at 390 instead of
// 480 GFLOP/s per thread (ONEDNN_VERBOSE, 768 x 768 products).
std::int64_t square_chunk(onednn::Input input) { return input == onednn::Input::BF16 ? 0 : 128; }

// The group's full products (both the primitives and their scratchpad sizes come from these).
onednn::ProductShape multiply_shape(std::int64_t m, onednn::Input input) {
    return {m, m, m, m, m, m, false, false, square_chunk(input)};
}
onednn::ProductShape apply_shape(std::int64_t m, std::int64_t n, bool accumulate, double sum_scale = 1) {
    return {m, n, m, m, n, n, false, accumulate, 0, static_cast<float>(sum_scale)};
}

}  // namespace

OneDnnGroupPrimitives::OneDnnGroupPrimitives(std::int64_t m, std::int64_t n, onednn::Input input, int threads,
                                             const std::vector<double>& update_scales)
    : gram_wide_(onednn::cpu_engine(), m, n, input, threads),
      gram_square_(onednn::cpu_engine(), m, m, input, threads, square_chunk(input)),
      multiply_(onednn::cpu_engine(), multiply_shape(m, input), input, threads),
      apply_(onednn::cpu_engine(), apply_shape(m, n, false), input, threads),
      apply_accumulate_(onednn::cpu_engine(), apply_shape(m, n, true), input, threads) {
    if (input != onednn::Input::BF16) return;
    for (double a : update_scales) {
        auto same = [a](const auto& u) { return u.first == a; };
        if (std::none_of(update_.begin(), update_.end(), same))
            update_.emplace_back(a, onednn::Product(onednn::cpu_engine(), apply_shape(m, n, true, a), input, threads));
        // They share the scratchpad sized below from apply_accumulate_ (oneDNN 2.6 sizes them alike).
        MODC_ASSERT(update_.back().second.scratchpad_bytes() <= apply_accumulate_.scratchpad_bytes(),
                    "an update primitive needs a larger scratchpad than the group's");
    }
}

// The update primitives differ from apply_accumulate_ only in the sum's scale, which does not
// change the scratchpad (checked as they are made).
std::size_t OneDnnGroupPrimitives::scratchpad_bytes(std::int64_t m, std::int64_t n, onednn::Input input, int threads) {
    const auto& e = onednn::cpu_engine();
    using onednn::Product, onednn::UpperProduct;
    return std::max({UpperProduct::scratchpad_bytes(e, m, n, input, threads),
                     UpperProduct::scratchpad_bytes(e, m, m, input, threads, square_chunk(input)),
                     Product::scratchpad_bytes(e, multiply_shape(m, input), input, threads),
                     Product::scratchpad_bytes(e, apply_shape(m, n, false), input, threads),
                     Product::scratchpad_bytes(e, apply_shape(m, n, true), input, threads)});
}

std::size_t scratchpad_bytes(std::int64_t m, std::int64_t n, kp::Precision precision, bool f64, int threads) {
    if (matmul_library(m, precision, f64) == MatmulLibrary::OpenBlas) return 0;
    auto input = precision == kp::Precision::BF16 ? onednn::Input::BF16 : onednn::Input::F32;
    return OneDnnGroupPrimitives::scratchpad_bytes(m, n, input, threads);
}

template <class T>
struct Products<T>::OneDnn {
    dnnl::stream stream;
    onednn::UpperProduct::Call gram_wide, gram_square;
    onednn::Product::Call multiply, apply, apply_accumulate;
    std::vector<std::pair<double, onednn::Product::Call>> update;  // by a
    Bf16Buffers* bf16 = nullptr;  // null in f32

    // The operands as the primitives take them: as they are in f32, rounded to bf16 in bf16.
    const void* left(const float* x, std::int64_t count) { return input(bf16 ? &bf16->left : nullptr, x, count); }
    const void* right(const float* x, std::int64_t count) { return input(bf16 ? &bf16->right : nullptr, x, count); }
    // bf16 only: the symmetric m x m a from its upper triangle, into the left- or right-hand buffer.
    const void* left_symmetric(const float* a, std::int64_t m) { return symmetric_input(false, a, m); }
    const void* right_symmetric(const float* a, std::int64_t m) { return symmetric_input(true, a, m); }
    const void* symmetric_input(bool right_hand, const float* a, std::int64_t m) {
        MODC_ASSERT(bf16, "symmetric operands are read from their upper triangle with bf16 inputs only");
        auto& buffer = right_hand ? bf16->right : bf16->left;
        MODC_ASSERT(static_cast<std::int64_t>(buffer.size()) >= m * m, "bf16 buffer too small");
        round_symmetric_to_bf16(a, buffer.data(), m);
        return buffer.data();
    }
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
Products<T>::Products(std::int64_t m, std::int64_t n, const OneDnnGroupPrimitives& p, void* scratchpad, Bf16Buffers* bf16)
    : m_(m), n_(n) {
    MODC_ASSERT((std::is_same_v<T, float>), "oneDNN runs f32 groups only");
    onednn_ = std::make_shared<OneDnn>();
    auto& d = *onednn_;
    d.stream = dnnl::stream(onednn::cpu_engine());
    d.gram_wide = p.gram_wide_.bind(scratchpad);
    d.gram_square = p.gram_square_.bind(scratchpad);
    d.multiply = p.multiply_.bind(scratchpad);
    d.apply = p.apply_.bind(scratchpad);
    d.apply_accumulate = p.apply_accumulate_.bind(scratchpad);
    for (const auto& [a, product] : p.update_) d.update.emplace_back(a, product.bind(scratchpad));
    d.bf16 = bf16;
    if (bf16) bf16->fit(m * n);
}

template <class T>
void Products<T>::gram(const T* x, T* c) {
    if constexpr (std::is_same_v<T, float>) {
        if (onednn_) {
            // Into the right-hand buffer, where apply(..., x_of_last_gram) finds it.
            const void* in = onednn_->right(x, m_ * n_);
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
            const void* in = reads_upper_triangle() ? onednn_->left_symmetric(a, m_) : onednn_->left(a, m_ * m_);
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
            const bool upper = reads_upper_triangle();
            const void* left = upper ? onednn_->left_symmetric(a, m_) : onednn_->left(a, m_ * m_);
            const void* right = upper ? onednn_->right_symmetric(b, m_) : onednn_->right(b, m_ * m_);
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
void Products<T>::apply(const T* a, const T* x, T* c, bool accumulate, bool symmetric, bool x_of_last_gram) {
    if constexpr (std::is_same_v<T, float>) {
        if (onednn_) {
            const void* left = symmetric && reads_upper_triangle() ? onednn_->left_symmetric(a, m_) : onednn_->left(a, m_ * m_);
            const void* right = x_of_last_gram && onednn_->bf16 ? onednn_->bf16->right.data() : onednn_->right(x, m_ * n_);
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

template <class T>
bool Products<T>::updates_in_place() const {
    return onednn_ && onednn_->bf16;
}

template <class T>
bool Products<T>::reads_upper_triangle() const {
    return onednn_ && onednn_->bf16;
}

template <class T>
void Products<T>::update(const T* b, T* x, double a, bool x_of_last_gram) {
    MODC_ASSERT(updates_in_place(), "in-place updates need bf16 inputs");
    if constexpr (std::is_same_v<T, float>) {
        auto& d = *onednn_;
        auto found = std::find_if(d.update.begin(), d.update.end(), [a](const auto& u) { return u.first == a; });
        MODC_ASSERT(found != d.update.end(), "no update primitive for this step's coefficient");
        const void* right = x_of_last_gram ? d.bf16->right.data() : d.right(x, m_ * n_);
        found->second(d.stream, d.left_symmetric(b, m_), right, x);
    }
}

template class Products<float>;
template class Products<double>;

}  // namespace modc::cpu
