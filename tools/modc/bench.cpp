#include "tools/modc/bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <type_traits>

#include "support/bf16.hpp"

namespace modc {

namespace {

// The times of the timed runs: wall-clock seconds of each run() (on the GPU: the copies of the
// gradients in and of the updates out included), and for Cuda each run's GPU time in seconds
// (last_run_ms(): the CUDA graph alone).
struct RunTimes {
    std::vector<double> wall;
    std::vector<double> gpu;
};

// T: float, double, or std::uint16_t (bf16 bits of normal values).
template <class T>
RunTimes time_runs(Dualizer& d, const BenchOptions& o) {
    std::mt19937 rng(o.seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<std::vector<T>> grads, updates;
    std::vector<const T*> in;
    std::vector<T*> out;
    for (const auto& w : d.weights()) {
        grads.emplace_back(static_cast<std::size_t>(w.elements()));
        for (auto& g : grads.back()) {
            if constexpr (std::is_same_v<T, std::uint16_t>)
                g = f32_to_bf16(static_cast<float>(normal(rng)));
            else
                g = static_cast<T>(normal(rng));
        }
        updates.emplace_back(static_cast<std::size_t>(w.elements()));
    }
    for (std::size_t i = 0; i < grads.size(); ++i) {
        in.push_back(grads[i].data());
        out.push_back(updates[i].data());
    }
    for (int i = 0; i < o.warmup; ++i) d.run(in.data(), out.data());
    RunTimes t;
    for (int i = 0; i < o.runs; ++i) {
        auto start = std::chrono::steady_clock::now();
        d.run(in.data(), out.data());
        t.wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        if (runs_cuda(d.backend())) t.gpu.push_back(d.last_run_ms() / 1e3);
    }
    return t;
}

double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    double pos = q * static_cast<double>(v.size() - 1);
    auto lo = static_cast<std::size_t>(pos);
    auto hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

struct Spread {
    double median, p10, p90, min;
    explicit Spread(const std::vector<double>& v)
        : median(quantile(v, 0.5)), p10(quantile(v, 0.1)), p90(quantile(v, 0.9)), min(*std::min_element(v.begin(), v.end())) {}
};

const char* dtype_name(DType t) { return t == DType::F32 ? "f32" : t == DType::F64 ? "f64" : "bf16"; }

}  // namespace

std::string run_bench(Dualizer& dualizer, double compile_seconds, const BenchOptions& o) {
    RunTimes t = dualizer.dtype() == DType::F32   ? time_runs<float>(dualizer, o)
                 : dualizer.dtype() == DType::F64 ? time_runs<double>(dualizer, o)
                                                  : time_runs<std::uint16_t>(dualizer, o);
    const bool cuda = runs_cuda(dualizer.backend());
    const Spread wall(t.wall);
    std::optional<Spread> gpu;
    if (cuda) gpu.emplace(t.gpu);
    double parameters = 0;
    for (const auto& w : dualizer.weights()) parameters += static_cast<double>(w.elements());
    double flops = dualizer.flops();
    if (o.json) {
        nlohmann::json j = {{"network", dualizer.network()},
                            {"schedule", dualizer.schedule()},
                            {"dtype", dtype_name(dualizer.dtype())},
                            {"precision", to_string(dualizer.precision())},
                            {"backend", to_string(dualizer.backend())},
                            {"device", dualizer.device_name()},
                            {"weights", dualizer.weights().size()},
                            {"parameters", parameters},
                            {"runs", o.runs},
                            {"compile_seconds", compile_seconds},
                            {"median_seconds", wall.median},
                            {"p10_seconds", wall.p10},
                            {"p90_seconds", wall.p90},
                            {"min_seconds", wall.min},
                            {"flops", flops},
                            {"gflops_per_second", flops / wall.median / 1e9}};
        if (gpu) {
            j["kernels_from_cache"] = dualizer.kernels_from_cache();
            j["gpu_median_seconds"] = gpu->median;
            j["gpu_p10_seconds"] = gpu->p10;
            j["gpu_p90_seconds"] = gpu->p90;
            j["gpu_min_seconds"] = gpu->min;
            j["gpu_gflops_per_second"] = gpu->median > 0 ? flops / gpu->median / 1e9 : 0.0;
        }
        return j.dump(1) + "\n";
    }
    std::string s;
    s += fmt::format("network {} ({} weights, {:.3g} parameters), schedule {}, {}, matmul inputs in {}\n",
                     dualizer.network(), dualizer.weights().size(), parameters, dualizer.schedule(),
                     dtype_name(dualizer.dtype()), to_string(dualizer.precision()));
    if (cuda)
        s += fmt::format("  device        {}; kernels {}\n", dualizer.device_name(),
                         dualizer.kernels_from_cache() ? "from the NVRTC cache" : "compiled by NVRTC");
    s += fmt::format("  compile       {:.3f} s (parse to {})\n", compile_seconds,
                     cuda ? "kernels loaded on the GPU" : "JIT-compiled dualizer");
    s += fmt::format("  run{}median {:.3f} ms, p10 {:.3f} ms, p90 {:.3f} ms over {} runs\n",
                     cuda ? " (wall)    " : "           ", wall.median * 1e3, wall.p10 * 1e3, wall.p90 * 1e3, o.runs);
    if (gpu)
        s += fmt::format("  run (GPU)     median {:.3f} ms, p10 {:.3f} ms, p90 {:.3f} ms (the CUDA graph alone; wall "
                         "time adds the host copies)\n",
                         gpu->median * 1e3, gpu->p10 * 1e3, gpu->p90 * 1e3);
    s += fmt::format("  work          {:.3g} FLOP per run (the flops done: symmetric and Gram forms counted as such)\n", flops);
    if (gpu) {
        s += fmt::format("  rate          {:.1f} GFLOP/s on the GPU time ({:.1f} on the wall time)\n",
                         gpu->median > 0 ? flops / gpu->median / 1e9 : 0.0, flops / wall.median / 1e9);
    } else {
        s += fmt::format("  rate          {:.1f} GFLOP/s\n", flops / wall.median / 1e9);
    }
    return s;
}

}  // namespace modc
