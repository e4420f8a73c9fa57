// The machine's large-GEMM rate, for bench/run.py's "machine limit": oneDNN's own matmul on
// large square matrices, f32 and bf16 (bf16 inputs, bf16 output, f32 accumulation), timed a few
// times each. Prints JSON: per precision the best and median GFLOP/s, the implementation oneDNN
// chose, and oneDNN's version and threads.
//
// Usage: gemm_rate [--size N] [--runs R]
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Rate {
    double best_gflops, median_gflops;
    std::string implementation;
};

// Fills a matrix with values in [-1, 1), so no denormals slow the first runs.
void fill(dnnl::memory& m, dnnl::memory::data_type type, std::size_t count) {
    std::uint32_t state = 12345;
    auto next = [&] { return (state = state * 1664525u + 1013904223u) / 4294967296.0f * 2 - 1; };
    if (type == dnnl::memory::data_type::f32) {
        auto* p = static_cast<float*>(m.get_data_handle());
        for (std::size_t i = 0; i < count; ++i) p[i] = next();
    } else {
        auto* p = static_cast<std::uint16_t*>(m.get_data_handle());
        for (std::size_t i = 0; i < count; ++i) {
            float v = next();
            std::uint32_t bits;
            std::memcpy(&bits, &v, 4);
            p[i] = static_cast<std::uint16_t>(bits >> 16);
        }
    }
}

Rate time_matmul(dnnl::engine& engine, dnnl::stream& stream, dnnl::memory::data_type type, long n, int runs) {
    using tag = dnnl::memory::format_tag;
    dnnl::memory::desc md({n, n}, type, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md, md, md), engine);
    dnnl::matmul matmul(pd);
    dnnl::memory a(md, engine), b(md, engine), c(md, engine);
    fill(a, type, static_cast<std::size_t>(n * n));
    fill(b, type, static_cast<std::size_t>(n * n));
    auto once = [&] {
        auto start = std::chrono::steady_clock::now();
        matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
        stream.wait();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    once();  // warm-up: JIT code, page faults
    std::vector<double> seconds;
    for (int i = 0; i < runs; ++i) seconds.push_back(once());
    std::sort(seconds.begin(), seconds.end());
    const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
    return {flops / seconds.front() / 1e9, flops / seconds[seconds.size() / 2] / 1e9, pd.impl_info_str()};
}

}  // namespace

int main(int argc, char** argv) {
    long n = 3072;
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--size") == 0) n = std::atol(argv[i + 1]);
        else if (std::strcmp(argv[i], "--runs") == 0) runs = std::atoi(argv[i + 1]);
    }
    if (n <= 0 || runs <= 0) {
        std::fprintf(stderr, "usage: gemm_rate [--size N] [--runs R]\n");
        return 1;
    }
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    const dnnl_version_t* v = dnnl_version();
    std::printf("{\"onednn\": \"%d.%d.%d\", \"size\": %ld, \"runs\": %d, \"hardware_threads\": %u", v->major, v->minor,
                v->patch, n, runs, std::thread::hardware_concurrency());
    const std::pair<const char*, dnnl::memory::data_type> precisions[] = {{"f32", dnnl::memory::data_type::f32},
                                                                          {"bf16", dnnl::memory::data_type::bf16}};
    for (const auto& [name, type] : precisions) {
        try {
            Rate r = time_matmul(engine, stream, type, n, runs);
            std::printf(", \"%s\": {\"best_gflops\": %.2f, \"median_gflops\": %.2f, \"implementation\": \"%s\"}", name,
                        r.best_gflops, r.median_gflops, r.implementation.c_str());
        } catch (const dnnl::error& e) {  // e.g. no bf16 matmul on this CPU
            std::printf(", \"%s\": null", name);
            std::fprintf(stderr, "gemm_rate: %s matmul unavailable: %s\n", name, e.what());
        }
    }
    std::printf("}\n");
    return 0;
}
