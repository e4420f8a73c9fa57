#include "bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

namespace modc {

namespace {

template <class T>
std::vector<double> time_runs(Dualizer& d, const BenchOptions& o) {
    std::mt19937 rng(o.seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<std::vector<T>> grads, updates;
    std::vector<const T*> in;
    std::vector<T*> out;
    for (const auto& w : d.weights()) {
        grads.emplace_back(static_cast<std::size_t>(w.elements()));
        for (auto& g : grads.back()) g = static_cast<T>(normal(rng));
        updates.emplace_back(static_cast<std::size_t>(w.elements()));
    }
    for (std::size_t i = 0; i < grads.size(); ++i) {
        in.push_back(grads[i].data());
        out.push_back(updates[i].data());
    }
    for (int i = 0; i < o.warmup; ++i) d.run(in.data(), out.data());
    std::vector<double> seconds;
    for (int i = 0; i < o.runs; ++i) {
        auto start = std::chrono::steady_clock::now();
        d.run(in.data(), out.data());
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return seconds;
}

double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    double pos = q * static_cast<double>(v.size() - 1);
    auto lo = static_cast<std::size_t>(pos);
    auto hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

std::string run_bench(Dualizer& dualizer, double compile_seconds, const BenchOptions& o) {
    std::vector<double> t = dualizer.dtype() == DType::F32 ? time_runs<float>(dualizer, o) : time_runs<double>(dualizer, o);
    double median = quantile(t, 0.5), p10 = quantile(t, 0.1), p90 = quantile(t, 0.9);
    double parameters = 0;
    for (const auto& w : dualizer.weights()) parameters += static_cast<double>(w.elements());
    double flops = dualizer.flops();
    if (o.json) {
        nlohmann::json j = {{"network", dualizer.network()},
                            {"schedule", dualizer.schedule()},
                            {"dtype", dualizer.dtype() == DType::F32 ? "f32" : "f64"},
                            {"weights", dualizer.weights().size()},
                            {"parameters", parameters},
                            {"runs", o.runs},
                            {"compile_seconds", compile_seconds},
                            {"median_seconds", median},
                            {"p10_seconds", p10},
                            {"p90_seconds", p90},
                            {"min_seconds", *std::min_element(t.begin(), t.end())},
                            {"flops", flops},
                            {"gflops_per_second", flops / median / 1e9}};
        return j.dump(1) + "\n";
    }
    std::string s;
    s += fmt::format("network {} ({} weights, {:.3g} parameters), schedule {}, {}\n", dualizer.network(),
                     dualizer.weights().size(), parameters, dualizer.schedule(),
                     dualizer.dtype() == DType::F32 ? "f32" : "f64");
    s += fmt::format("  compile       {:.3f} s (parse to JIT-compiled dualizer)\n", compile_seconds);
    s += fmt::format("  run           median {:.3f} ms, p10 {:.3f} ms, p90 {:.3f} ms over {} runs\n", median * 1e3,
                     p10 * 1e3, p90 * 1e3, o.runs);
    s += fmt::format("  work          {:.3g} FLOP per run (the flops done: symmetric and Gram forms counted as such)\n", flops);
    s += fmt::format("  rate          {:.1f} GFLOP/s\n", flops / median / 1e9);
    return s;
}

}  // namespace modc
