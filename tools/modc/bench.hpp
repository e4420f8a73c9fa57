// `modc bench`: compile a network's dualizer once, run it on random gradients many times, and
// report the steady-state time (median and spread), the FLOPs done and the rate. On the CUDA
// backend: the wall time of a run (host copies included) and the GPU time (the CUDA graph alone).
#pragma once
#include <string>

#include "library/modc.hpp"

namespace modc {

struct BenchOptions {
    int runs = 20;
    int warmup = 3;
    bool json = false;
    unsigned seed = 1;
};

// Returns the report (text or JSON).
std::string run_bench(Dualizer& dualizer, double compile_seconds, const BenchOptions& options);

}  // namespace modc
