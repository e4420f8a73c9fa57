// Ill-conditioned gradients for the tests that compare backends (test_cuda.cpp,
// test_cuda_device.cpp): a matrix given singular values that decay, or a low rank.
#pragma once
#include <catch2/catch.hpp>
#include <lapacke.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace modc::test {

// The singular values given to each matrix gradient (i = 1, 2, ...): Gaussian ones as drawn
// (well-conditioned: they hid the missing symmetrisation of Gram groups, issue 14), 1/i, 1/i^2,
// three of 10 plus noise of 1e-3, or 1/i for the first half and exactly zero after.
enum class Spectrum { Gaussian, Decay1, Decay2, LowRankNoise, RankDeficient };

// Gives the rows x cols matrix g (row-major) the spectrum s, keeping its singular vectors.
template <class T>
inline void give_spectrum(std::vector<T>& g, std::int64_t rows, std::int64_t cols, Spectrum s, std::mt19937& rng) {
    const int m = static_cast<int>(rows), n = static_cast<int>(cols), k = std::min(m, n);
    if (s == Spectrum::Gaussian || k < 2) return;
    std::vector<double> a(g.begin(), g.end()), sv(static_cast<std::size_t>(k)), u(static_cast<std::size_t>(m) * k),
        vt(static_cast<std::size_t>(k) * n);
    REQUIRE(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', m, n, a.data(), n, sv.data(), u.data(), k, vt.data(), n) == 0);
    for (int i = 0; i < k; ++i) {
        double r = i + 1;
        sv[static_cast<std::size_t>(i)] = s == Spectrum::Decay1         ? 1 / r
                                          : s == Spectrum::Decay2       ? 1 / (r * r)
                                          : s == Spectrum::LowRankNoise ? (i < 3 ? 10.0 : 0.0)
                                                                        : (i < k / 2 ? 1 / r : 0.0);
    }
    std::normal_distribution<double> noise(0, 1e-3);
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            double v = s == Spectrum::LowRankNoise ? noise(rng) : 0.0;
            for (int l = 0; l < k; ++l) v += u[static_cast<std::size_t>(i * k + l)] * sv[static_cast<std::size_t>(l)] * vt[static_cast<std::size_t>(l * n + j)];
            g[static_cast<std::size_t>(i * n + j)] = static_cast<T>(v);
        }
}

}  // namespace modc::test
