// compiler/backend/codegen_cuda: the kernel plan as CUDA C++ for NVRTC, and the program that runs it.
//
// codegen_cuda() returns two things made together, so that they cannot disagree:
//   - `source`: one CUDA C++ translation unit of `extern "C" __global__` kernels, every shape,
//     stride and constant a literal, each kernel preceded by a `#line` directive naming the
//     atom in the .mod file it serves. It includes no header: NVRTC compiles it as it is, and
//     the cuda-sim backend compiles the very same text with runtime/cuda/sim/cuda_host.h.
//   - `ops`: the run, in order, on one stream: kernel launches (name, grid, block, arguments)
//     and cuBLAS calls (syrk, symm, strided-batched gemm) with their column-major parameters
//     exactly as cuBLAS takes them. runtime/cuda executes it on a GPU; the host test executes
//     it with the same kernels compiled for the CPU and CBLAS in column-major mode.
//
// Gradients and updates are in the compute type, or in bf16 (CudaOptions::storage): then only
// the kernels that read a gradient or write an update convert, and everything else stays f32.
//
// Reductions sum each block's part through shared memory (modc_block_sum: a fixed order, two
// __syncthreads) and add it with one atomic per block into a small zeroed scratch array, which a
// later kernel reads; a matrix of at most CudaOptions::max_fused_norm elements is normalised by
// one block that sums its squares first, in one kernel. The simulator runs a block's threads one
// after the other and replays the code before each barrier (runtime/cuda/sim/cuda_host.h), so
// between barriers a kernel only stores values computed from memory as the last barrier left it,
// and its atomics come after the last barrier.
//
// The work per group of the kernel plan (the same as the CPU backend's, see codegen_llvm.hpp):
//   orthogonalising groups (B = members x slices matrices of m x n each, stacked in X):
//     g_clear, then per member g_sumsq + g_normalize (X_b = G_b / (||G_b||_F ns + eps)), or the
//     fused g_normalize alone; a transposed group (rows > cols) keeps X in the gradient's layout,
//     which cuBLAS reads as X column-major. Per Newton-Schulz step A = X X^T (cuBLAS), [A A
//     (cuBLAS)], g_s_poly (P = a I + b A + c A A: a X folded into P's diagonal), X' = P X (cuBLAS),
//     swap X and Y; the last product of a fixed schedule writes each member's update (alpha = its
//     scale), else per member g_m_finish (update = scale X). A Gram group (kernel_plan.hpp) runs its
//     steps on m x m matrices instead: A = X X^T once, then per step A A, g_s_poly (P = a I +
//     b A + c A A), Q = P Q, and but for the last step A = P P A, all with cuBLAS; at the end
//     X' = Q X (twice where the plan restarts). The cubic schedule runs its step max_steps
//     times, with g_change + g_converged after each: once a matrix has converged its steps leave
//     it unchanged (P = I), and every few steps a Converged op lets the host skip the
//     rest of the group's steps once all of its matrices have converged.
//   closed forms: per member g_m_map with its scale, after reductions where the map needs them.
//
// The GEMMs' precision is the kernel plan's (KernelPlan::precision): f32 (the compute type) as
// above; tf32, the same ops with every matmul a GemmEx; bf16, Newton-Schulz's state in bf16
// buffers between GemmEx calls (docs/cuda.md, "Precision").
#pragma once
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "program/cuda_program.hpp"
#include "program/kernel_plan.hpp"

namespace modc::cuda {

enum class MatmulMode {
    Auto,       // symmetric (syrk, symm) for a group of one matrix, strided-batched gemm otherwise
    Symmetric,  // always syrk and symm, one call per matrix
    Batched,    // always strided-batched gemm, one call per step for the whole group
};

struct CudaOptions {
    ElementType type = ElementType::F32;
    Storage storage = Storage::Compute;  // BF16 needs type F32
    MatmulMode matmul = MatmulMode::Auto;
    unsigned block = 256;      // threads per block of every kernel
    unsigned max_grid = 1024;  // blocks along x at most (the kernels loop over the rest)
    unsigned max_reduce_grid = 256;  // the same for reductions, which end in one atomic per block
    // A matrix of at most this many elements is normalised by one block, which sums its squares
    // too: one launch, where a larger one has a reduction over many blocks and then the scaling.
    // One block of 256 threads streams 8 Ki elements (twice, the second time from its cache) in
    // about the time of the launch it saves; beyond, the many blocks of the pair win. A guess
    // from the GPU's figures, not measured.
    std::int64_t max_fused_norm = 8192;
};

// The schedule `svd` has no CUDA form (it needs an SVD on the device): asking for it, for the
// whole network or one weight, throws this, naming the weights. So does BF16 storage with
// f64 compute.
struct Unsupported : std::runtime_error {
    using std::runtime_error::runtime_error;
};

Program codegen_cuda(const kp::KernelPlan& plan, const CudaOptions& options = {});

// The source, then the run as comments (what `modc emit --emit cuda` prints).
std::string print_cuda(const Program& program);

}  // namespace modc::cuda
