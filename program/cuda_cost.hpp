// The cost of a CUDA program (cuda_program.hpp), op by op, in the order the ops run: what each
// computes and moves, and a modelled time on an H100 at its stated peaks (`modc emit --emit
// cost`; docs/cuda.md). Kernels report what their generator counted (Launch::work); cuBLAS calls
// are counted from their shapes (a gemm 2 m n k flops, syrk half of its product, inputs read
// once, C written once and read too where beta != 0).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "program/cuda_program.hpp"

namespace modc::cuda {

// NVIDIA's stated peaks for the H100 SXM5 (dense, no sparsity), in flop/s and bytes/s.
struct Peaks {
    double bf16 = 989e12;      // bf16 tensor cores
    double tf32 = 494e12;      // tf32 tensor cores
    double f32 = 67e12;        // f32 on CUDA cores (no tensor cores): f32 kernels and S routines
    double f64 = 67e12;        // f64 tensor cores: D routines
    double f64_cuda = 34e12;   // f64 on CUDA cores: f64 kernels
    double bandwidth = 3.35e12;  // HBM3
    std::string name = "H100 SXM (stated peaks: 989 TFLOP/s bf16, 494 tf32, 67 f32, 67 f64 tensor, 3.35 TB/s)";
};

struct OpCost {
    std::size_t op = 0;
    std::string kind;       // kernel, gemm, batched gemm, syrk, symm, host
    std::string name;       // the kernel, or the cuBLAS routine
    std::string shape;      // m x n x k (x batch) of a matmul; blocks x threads of a kernel
    std::string precision;  // of the arithmetic: f32, f64, tf32, bf16
    double flops = 0;
    std::int64_t read = 0, written = 0;  // bytes of device memory
    double seconds = 0;  // modelled: max(flops / peak, bytes / bandwidth), no launch overhead
};

struct Cost {
    std::vector<OpCost> ops;
    double flops = 0, seconds = 0;
    std::int64_t read = 0, written = 0;
    std::size_t launches = 0, matmuls = 0, checks = 0;  // kernels, cuBLAS calls, host decisions
    Peaks peaks;
};

// Every op of the program. The cubic schedule's loop is counted whole (all its steps), as if no
// convergence check stopped it early.
Cost cost(const Program& program, const Peaks& peaks = {});

// One line per op, then the totals (deterministic, for golden tests).
std::string print_cost(const Cost& cost);

}  // namespace modc::cuda
