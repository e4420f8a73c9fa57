// The CPU kernels of compiler/backend/codegen_llvm, JIT-compiled and called one by one on
// hand-made groups, against plain loops written here:
//   - normalize and finish of a transposed group (8 x 8 blocks in tiles; tiles of elements for
//     several slices) place every element where the untransposed group's row-by-row loops do,
//     bit for bit, on shapes off the block size and larger than one tile both ways, with kernel
//     slices; and X against G / (||G|| ns + eps) in long double;
//   - symmetrize (8 x 8 blocks) mirrors the upper triangle exactly, on sizes off the block;
//   - the sums of squares (in interleaved lanes) against long double on magnitudes from 1e-30
//     to 1e+30, for lengths off the lane count, the same whatever the data's alignment.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "compiler/backend/codegen_llvm.hpp"
#include "runtime/cpu/jit.hpp"

using namespace modc;

namespace {

constexpr double kNormScale = 1.02, kEps = 1e-6, kScale = 0.75;

// An orthogonalising group with a normalize step and the cubic iteration (for change).
kp::Group group(std::int64_t rows, std::int64_t cols, std::int64_t slices, bool transpose) {
    kp::Group g;
    g.map = slices > 1 ? MapKind::OrthogonalizeSlices : MapKind::Orthogonalize;
    g.rows = rows;
    g.cols = cols;
    g.slices = slices;
    g.transpose = transpose;
    g.shape = {rows, cols, slices};
    g.members.push_back({0, "w", kScale, "test.mod:1"});
    kp::Step normalize{};
    normalize.kind = kp::StepKind::Normalize;
    normalize.norm_scale = kNormScale;
    normalize.eps = kEps;
    kp::Step cubic{};
    cubic.kind = kp::StepKind::IterateToConvergence;
    cubic.coeffs = {1.5, -0.5, 0};
    cubic.tolerance = 1e-6;
    cubic.max_steps = 10;
    g.steps = {normalize, cubic};
    return g;
}

template <class T>
struct Kernels {
    using Normalize = void(const T*, T*, std::int64_t);
    using Finish = void(T*, const T*, std::int64_t);
    using Change = double(const T*, const T*);
    std::unique_ptr<cpu::Jit> jit;
    explicit Kernels(const std::vector<kp::Group>& groups) {
        kp::KernelPlan plan;
        plan.network = "test";
        plan.groups = groups;
        jit = std::make_unique<cpu::Jit>(codegen_llvm(plan, sizeof(T) == 4 ? ElementType::F32 : ElementType::F64));
    }
    Normalize* normalize(std::size_t g) { return jit->function<Normalize>(KernelNames::normalize(g)); }
    Finish* finish(std::size_t g) { return jit->function<Finish>(KernelNames::finish(g, 0)); }
    Change* change(std::size_t g) { return jit->function<Change>(KernelNames::change(g)); }
    using Symmetrize = void(T*);
    Symmetrize* symmetrize(std::size_t g) { return jit->function<Symmetrize>(KernelNames::symmetrize(g)); }
};

template <class T>
std::vector<T> gaussian(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(normal(rng));
    return v;
}

template <class T>
void check_transposed_normalize_and_finish(std::int64_t rows, std::int64_t cols, std::int64_t slices) {
    INFO(rows << " x " << cols << " x " << slices << " slices, " << (sizeof(T) == 4 ? "f32" : "f64"));
    // Group 0 transposed (X = G^T, cols x rows), group 1 not (X = G): the same gradient.
    Kernels<T> k({group(rows, cols, slices, true), group(rows, cols, slices, false)});
    const std::int64_t n = rows * cols;
    auto at = [&](std::int64_t o, std::int64_t c, std::int64_t s) {
        return static_cast<std::size_t>((o * cols + c) * slices + s);
    };
    std::vector<T> grad = gaussian<T>(static_cast<std::size_t>(n * slices), 11);
    const T sentinel = T(-123.5);
    std::vector<T> update_t(grad.size(), sentinel), update_p(grad.size(), sentinel);
    for (std::int64_t s = 0; s < slices; ++s) {
        std::vector<T> xt(static_cast<std::size_t>(n)), xp(static_cast<std::size_t>(n));
        k.normalize(0)(grad.data(), xt.data(), s);
        k.normalize(1)(grad.data(), xp.data(), s);
        long double ss = 0;
        for (std::int64_t o = 0; o < rows; ++o)
            for (std::int64_t c = 0; c < cols; ++c) {
                long double v = grad[at(o, c, s)];
                ss += v * v;
            }
        const long double denom = std::sqrt(ss) * kNormScale + kEps;
        const double tol = 4 * std::numeric_limits<T>::epsilon();
        std::int64_t misplaced = 0, off = 0;
        for (std::int64_t o = 0; o < rows; ++o)
            for (std::int64_t c = 0; c < cols; ++c) {
                T plain = xp[static_cast<std::size_t>(o * cols + c)];
                if (xt[static_cast<std::size_t>(c * rows + o)] != plain) ++misplaced;
                long double want = grad[at(o, c, s)] / denom;
                if (std::fabs(static_cast<long double>(plain) - want) > tol * std::fabs(want)) ++off;
            }
        CHECK(misplaced == 0);
        CHECK(off == 0);
        k.finish(0)(update_t.data(), xt.data(), s);
        k.finish(1)(update_p.data(), xp.data(), s);
        // Slices s+1.. are still the sentinel; slice s is scale * X, multiplied in T.
        std::int64_t wrong = 0;
        for (std::int64_t o = 0; o < rows; ++o)
            for (std::int64_t c = 0; c < cols; ++c)
                for (std::int64_t t = s; t < slices; ++t) {  // slices before s: checked already
                    T want = t == s ? static_cast<T>(kScale) * xp[static_cast<std::size_t>(o * cols + c)] : sentinel;
                    if (update_t[at(o, c, t)] != want || update_p[at(o, c, t)] != want) ++wrong;
                }
        CHECK(wrong == 0);
    }
}

template <class T>
void check_symmetrize(std::int64_t m) {
    INFO("m = " << m << ", " << (sizeof(T) == 4 ? "f32" : "f64"));
    Kernels<T> k({group(m, m + 3, 1, false)});  // the Gram side m
    std::vector<T> a = gaussian<T>(static_cast<std::size_t>(m * m), 5), upper = a;
    auto at = [&](std::int64_t i, std::int64_t j) { return static_cast<std::size_t>(i * m + j); };
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < i; ++j) a[at(i, j)] = T(-123.5);  // below the diagonal: not read
    k.symmetrize(0)(a.data());
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < m; ++j)
            if (a[at(i, j)] != (j >= i ? upper[at(i, j)] : upper[at(j, i)])) ++wrong;
    CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("llvm: symmetrize mirrors the upper triangle exactly", "[cpu][llvm]") {
    // Whole 8 x 8 blocks in one tile and in several (96: 12 blocks, 3 tiles), with rows left over
    // (70, 33), and none whole (5).
    for (std::int64_t m : {1, 5, 8, 33, 70, 96}) {
        check_symmetrize<float>(m);
        check_symmetrize<double>(m);
    }
}

TEST_CASE("llvm: transposed normalize and finish in tiles place each element as the plain loops do", "[cpu][llvm]") {
    // 70 x 33: blocks and left-over edges both ways; 5 x 3: edges alone; 96 x 64: whole blocks, in
    // several tiles both ways; slices: tiles of elements, cut at the edges.
    for (auto [rows, cols, slices] : std::vector<std::array<std::int64_t, 3>>{
             {70, 33, 1}, {33, 70, 1}, {5, 3, 1}, {96, 64, 1}, {70, 33, 3}, {33, 41, 9}}) {
        check_transposed_normalize_and_finish<float>(rows, cols, slices);
        check_transposed_normalize_and_finish<double>(rows, cols, slices);
    }
}

TEST_CASE("llvm: sums of squares in lanes are exact to rounding and ignore alignment", "[cpu][llvm]") {
    // change(X, Y) = ||Y - X|| / ||X||, both sums in the lanes; n = 1 x cols, off the lane count.
    for (std::int64_t n : {1, 5, 16, 17, 47, 2310}) {
        INFO("n = " << n);
        Kernels<float> k({group(1, n, 1, false)});
        std::mt19937_64 rng(static_cast<std::uint64_t>(n));
        std::uniform_real_distribution<double> exponent(-30, 30);
        // Magnitudes over 60 decades: what a serial or lane order gets wrong shows.
        std::vector<float> x(static_cast<std::size_t>(n) + 1), y(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) {
            x[i] = static_cast<float>(std::pow(10.0, exponent(rng)) * (i % 3 == 0 ? -1 : 1));
            y[i] = static_cast<float>(x[i] * (1 + std::pow(10.0, exponent(rng) / 10)));
        }
        long double diff = 0, norm = 0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
            long double d = static_cast<long double>(y[i]) - x[i];
            diff += d * d;
            norm += static_cast<long double>(x[i]) * x[i];
        }
        const double want = static_cast<double>(std::sqrt(diff) / std::sqrt(norm));
        const double got = k.change(0)(x.data(), y.data());
        CHECK(std::fabs(got - want) <= 1e-13 * want);
        // The same values one float further on: another alignment, the same bits.
        std::vector<float> xs(x.size() + 1), ys(y.size() + 1);
        std::copy(x.begin(), x.end(), xs.begin() + 1);
        std::copy(y.begin(), y.end(), ys.begin() + 1);
        CHECK(k.change(0)(xs.data() + 1, ys.data() + 1) == got);
        // normalize's sum: X = G / (||G|| ns + eps), the same at either alignment.
        std::vector<float> xa(static_cast<std::size_t>(n)), xb(xa.size());
        k.normalize(0)(x.data(), xa.data(), 0);
        k.normalize(0)(xs.data() + 1, xb.data(), 0);
        CHECK(xa == xb);
        const long double denom = std::sqrt(norm) * kNormScale + kEps;
        std::int64_t off = 0;
        for (std::size_t i = 0; i < xa.size(); ++i) {
            long double w = x[i] / denom;
            // Elements far below the norm come out subnormal: rounded to a multiple of denorm_min.
            long double tol = 4 * std::numeric_limits<float>::epsilon() * std::fabs(w) +
                              std::numeric_limits<float>::denorm_min();
            if (std::fabs(static_cast<long double>(xa[i]) - w) > tol) ++off;
        }
        CHECK(off == 0);
    }
}
