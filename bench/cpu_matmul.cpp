// bench/cpu_matmul.cpp: the products of one Newton-Schulz step on OpenBLAS and on oneDNN, per
// shape and precision, interleaved, on one thread (items side by side) or all; the measurements
// behind runtime/cpu/products.hpp's choice of library (docs/performance.md), and oneDNN's own
// large-GEMM rate (the "machine limit" of issue 16).
//
//   cmake --build build --target cpu_matmul_bench && build/bench/cpu_matmul_bench [threads]
//
// Per m x n (m <= n): X X^T (OpenBLAS ssyrk; oneDNN's upper block triangle, f32 and bf16) and
// B X for a symmetric m x m B (OpenBLAS ssymm; oneDNN's full product), medians in ms, and each
// oneDNN time as a ratio to OpenBLAS's (< 1: oneDNN faster); "full": oneDNN's whole bf16 X X^T in
// one call over its upper block triangle (> 1: the triangle wins). bf16 times include rounding
// the inputs to bf16.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "runtime/cpu/onednn_matmul.hpp"
#include "support/bf16.hpp"

namespace {

using namespace modc::cpu::onednn;

double median_ms(const std::function<void()>& f, double budget_ms) {
    f();  // warm
    std::vector<double> times;
    double spent = 0;
    while (times.size() < 3 || (spent < budget_ms && times.size() < 50)) {
        auto start = std::chrono::steady_clock::now();
        f();
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        spent += times.back();
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

void to_bf16(const std::vector<float>& in, std::vector<std::uint16_t>& out) {
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = modc::f32_to_bf16(in[i]);
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("threads %d, OPENBLAS_CORETYPE=%s\n", threads, coretype ? coretype : "(unset)");
    std::printf("%5s %5s | %9s %9s %9s %9s %6s %6s %6s | %9s %9s %9s %6s %6s\n", "m", "n", "ssyrk", "dnn f32", "dnn bf16",
                "full bf16", "f32", "bf16", "full", "ssymm", "dnn f32", "dnn bf16", "f32", "bf16");
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    const auto& engine = cpu_engine();
    dnnl::stream stream(engine);
    for (std::int64_t m : {16, 32, 64, 128, 256, 512, 768, 1024}) {
        for (std::int64_t n : {m, 4 * m}) {
            std::vector<float> x(static_cast<std::size_t>(m * n)), b(static_cast<std::size_t>(m * m)), c(b.size()), y(x.size());
            for (auto& v : x) v = normal(rng);
            for (std::int64_t i = 0; i < m; ++i)
                for (std::int64_t j = 0; j <= i; ++j) b[static_cast<std::size_t>(i * m + j)] = b[static_cast<std::size_t>(j * m + i)] = normal(rng);
            std::vector<std::uint16_t> xh(x.size()), bh(b.size());
            UpperProduct gram32(engine, m, n, Input::F32, threads), gram16(engine, m, n, Input::BF16, threads);
            const ProductShape whole{m, m, n, n, n, m, true, false};  // all of X X^T in one call
            Product full16(engine, whole, Input::BF16, threads);
            Product apply32(engine, {m, n, m, m, n, n, false, true}, Input::F32, threads);
            Product apply16(engine, {m, n, m, m, n, n, false, true}, Input::BF16, threads);
            std::vector<char> scratch(std::max({UpperProduct::scratchpad_bytes(engine, m, n, Input::BF16, threads),
                                                UpperProduct::scratchpad_bytes(engine, m, n, Input::F32, threads),
                                                Product::scratchpad_bytes(engine, whole, Input::BF16, threads),
                                                Product::scratchpad_bytes(engine, {m, n, m, m, n, n, false, true}, Input::F32, threads),
                                                Product::scratchpad_bytes(engine, {m, n, m, m, n, n, false, true}, Input::BF16, threads)}));
            auto g32 = gram32.bind(scratch.data()), g16 = gram16.bind(scratch.data());
            auto f16 = full16.bind(scratch.data());
            auto a32 = apply32.bind(scratch.data()), a16 = apply16.bind(scratch.data());
            const double budget = 300;
            // Interleaved: each library's run follows the other's, in the same cache state.
            double syrk = median_ms([&] { cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, n, 1, x.data(), n, 0, c.data(), m); }, budget);
            double dg32 = median_ms([&] { g32(stream, x.data(), x.data(), c.data()); }, budget);
            double dg16 = median_ms([&] { to_bf16(x, xh); g16(stream, xh.data(), xh.data(), c.data()); }, budget);
            double df16 = median_ms([&] { to_bf16(x, xh); f16(stream, xh.data(), xh.data(), c.data()); }, budget);
            double symm = median_ms([&] { cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, m, n, 1, b.data(), m, x.data(), n, 1, y.data(), n); }, budget);
            double da32 = median_ms([&] { a32(stream, b.data(), x.data(), y.data()); }, budget);
            double da16 = median_ms([&] { to_bf16(b, bh); to_bf16(x, xh); a16(stream, bh.data(), xh.data(), y.data()); }, budget);
            std::printf("%5ld %5ld | %9.4f %9.4f %9.4f %9.4f %6.2f %6.2f %6.2f | %9.4f %9.4f %9.4f %6.2f %6.2f\n", static_cast<long>(m),
                        static_cast<long>(n), syrk, dg32, dg16, df16, dg32 / syrk, dg16 / syrk, df16 / dg16, symm, da32, da16,
                        da32 / symm, da16 / symm);
            std::fflush(stdout);
        }
    }
    // oneDNN's and OpenBLAS's large-GEMM rates (2048^3).
    const std::int64_t big = 2048;
    std::vector<float> a(static_cast<std::size_t>(big * big)), bb(a.size()), cc(a.size());
    for (auto& v : a) v = normal(rng);
    for (auto& v : bb) v = normal(rng);
    std::vector<std::uint16_t> ah(a.size()), bbh(a.size());
    to_bf16(a, ah);
    to_bf16(bb, bbh);
    const ProductShape square{big, big, big, big, big, big, false, false};
    Product gemm32(engine, square, Input::F32, threads);
    Product gemm16(engine, square, Input::BF16, threads);
    std::vector<char> scratch(std::max(Product::scratchpad_bytes(engine, square, Input::F32, threads),
                                       Product::scratchpad_bytes(engine, square, Input::BF16, threads)));
    auto c32 = gemm32.bind(scratch.data()), c16 = gemm16.bind(scratch.data());
    const double flops = 2.0 * big * big * big;
    double sgemm = median_ms([&] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, big, big, big, 1, a.data(), big, bb.data(), big, 0, cc.data(), big); }, 2000);
    double d32 = median_ms([&] { c32(stream, a.data(), bb.data(), cc.data()); }, 2000);
    double d16 = median_ms([&] { c16(stream, ah.data(), bbh.data(), cc.data()); }, 2000);
    std::printf("2048^3 GEMM GFLOP/s: OpenBLAS sgemm %.1f, oneDNN f32 %.1f, oneDNN bf16 %.1f\n", flops / sgemm / 1e6,
                flops / d32 / 1e6, flops / d16 / 1e6);
}
