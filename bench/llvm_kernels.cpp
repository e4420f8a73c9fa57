// bench/llvm_kernels.cpp: modc's own CPU kernels (compiler/backend/codegen_llvm) one by one, on
// one thread, for the gradients of a GPT-2 MLP: the 3072 x 768 one, whose X is its transpose
// (normalize and finish go through tiles), and the 768 x 3072 one (row by row), f32 and f64.
// Medians in ms; the numbers behind docs/performance.md's "Where a bf16 step's time goes".
//
//   cmake --build build --target llvm_kernels_bench && build/bench/llvm_kernels_bench
//
// For a before/after, build it at both commits and run the two binaries in turn.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "compiler/backend/codegen_llvm.hpp"
#include "runtime/cpu/jit.hpp"

namespace {

using namespace modc;

double median_ms(const std::function<void()>& f) {
    f();  // warm
    std::vector<double> times;
    for (int r = 0; r < 15; ++r) {
        auto start = std::chrono::steady_clock::now();
        f();
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(times.begin(), times.begin() + 7, times.end());
    return times[7];
}

// An orthogonalising group as the schedules make it: normalize, the cubic iteration (for the
// change kernel), finish.
kp::Group group(std::int64_t rows, std::int64_t cols) {
    kp::Group g;
    g.map = MapKind::Orthogonalize;
    g.rows = rows;
    g.cols = cols;
    g.transpose = rows > cols;
    g.shape = {rows, cols};
    g.members.push_back({0, "w", 0.5, "bench:1"});
    kp::Step normalize{};
    normalize.kind = kp::StepKind::Normalize;
    normalize.norm_scale = 1.02;
    normalize.eps = 1e-6;
    kp::Step cubic{};
    cubic.kind = kp::StepKind::IterateToConvergence;
    cubic.coeffs = {1.5, -0.5, 0};
    g.steps = {normalize, cubic};
    return g;
}

template <class T>
void run(const char* type_name) {
    kp::KernelPlan plan;
    plan.network = "bench";
    plan.groups = {group(3072, 768), group(768, 3072)};
    cpu::Jit jit(codegen_llvm(plan, sizeof(T) == 4 ? ElementType::F32 : ElementType::F64));
    const std::size_t n = 3072 * 768;
    std::vector<T> grad(n), x(n), y(n), update(n);
    std::mt19937_64 rng(1);
    std::normal_distribution<double> normal;
    for (auto& v : grad) v = static_cast<T>(normal(rng));
    for (auto& v : y) v = static_cast<T>(normal(rng));
    for (std::size_t g = 0; g < plan.groups.size(); ++g) {
        auto* normalize = jit.function<void(const T*, T*, std::int64_t)>(KernelNames::normalize(g));
        auto* finish = jit.function<void(T*, const T*, std::int64_t)>(KernelNames::finish(g, 0));
        auto* change = jit.function<double(const T*, const T*)>(KernelNames::change(g));
        const auto& gr = plan.groups[g];
        std::printf("%s %lld x %lld%-12s normalize %7.3f  finish %7.3f  change %7.3f ms\n", type_name,
                    static_cast<long long>(gr.rows), static_cast<long long>(gr.cols), gr.transpose ? " (X^T)" : "",
                    median_ms([&] { normalize(grad.data(), x.data(), 0); }),
                    median_ms([&] { finish(update.data(), x.data(), 0); }),
                    median_ms([&] { change(x.data(), y.data()); }));
    }
}

}  // namespace

int main() {
    run<float>("f32");
    run<double>("f64");
}
