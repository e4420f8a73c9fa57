// compiler/codegen_cuda: the kernel plan as CUDA C++ for NVRTC, and the program that runs it.
//
// codegen_cuda() returns two things made together, so that they cannot disagree:
//   - `source`: one CUDA C++ translation unit of `extern "C" __global__` kernels, every shape,
//     stride and constant a literal, each kernel preceded by a `#line` directive naming the
//     atom in the .mod file it serves. It includes no header: NVRTC compiles it as it is, and
//     the host tests compile the very same text with tests/cuda_host/cuda_host.h.
//   - `ops`: the run, in order, on one stream: kernel launches (name, grid, block, arguments)
//     and cuBLAS calls (syrk, symm, strided-batched gemm) with their column-major parameters
//     exactly as cuBLAS takes them. runtime/cuda executes it on a GPU; the host test executes
//     it with the same kernels compiled for the CPU and CBLAS in column-major mode.
//
// Gradients and updates are in the compute type, or in bf16 (CudaOptions::storage): then only
// the kernels that read a gradient or write an update convert, and everything else stays f32.
//
// The kernels use neither shared memory nor __syncthreads: every reduction accumulates with
// atomicAdd (or atomicMax/atomicMin) into a small zeroed scratch array, and a later kernel reads
// it. That keeps them exact when each thread is run one after the other on the host.
//
// The work per group of the kernel plan (the same as the CPU backend's, see codegen_llvm.hpp):
//   orthogonalising groups (B = members x slices matrices of m x n each, stacked in X):
//     g_clear, then per member g_sumsq + g_normalize (X_b = G_b / (||G_b||_F ns + eps), transposed
//     when rows > cols); per Newton-Schulz step A = X X^T (cuBLAS), [A A (cuBLAS)], g_s_poly
//     (B = b A + c A A), g_s_axpy (Y = a X), Y += B X (cuBLAS), swap X and Y; per member
//     g_m_finish (update = scale X, transposed back). A Gram group (kernel_plan.hpp) runs its
//     steps on m x m matrices instead: A = X X^T once, then per step A A, g_s_poly (P = a I +
//     b A + c A A), Q = P Q, and but for the last step A = P P A, all with cuBLAS; at the end
//     X' = Q X (twice where the plan restarts), which g_m_finish reads. The cubic schedule runs its step max_steps
//     times, with g_change + g_converged after each: once a matrix has converged its steps leave
//     it unchanged (B = 0, Y = X), and every few steps a Converged op lets the host skip the
//     rest of the group's steps once all of its matrices have converged.
//   closed forms: per member g_m_map with its scale, after reductions where the map needs them.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "codegen_llvm.hpp"  // ElementType, KernelNames
#include "kernel_plan.hpp"

namespace modc::cuda {

// The buffers a program uses. X, Y, A, AA, B, Q, T and Scratch are work buffers the runtime allocates
// once (sizes in Program::bytes); Grad and Update are weight `leaf`'s tensors.
enum class Buffer : std::uint8_t { X, Y, A, AA, B, Q, T, Scratch, Grad, Update };
inline constexpr int kWorkBuffers = 8;  // X .. Scratch (Q and T: Gram Newton-Schulz only)
const char* to_string(Buffer b);

struct Operand {
    Buffer buffer = Buffer::X;
    std::int64_t offset = 0;  // bytes
    int leaf = -1;            // Grad and Update
};

struct Launch {
    std::string kernel;
    std::array<unsigned, 3> grid{1, 1, 1};
    std::array<unsigned, 3> block{1, 1, 1};
    std::vector<Operand> args;  // every kernel parameter is a pointer
};

// One cuBLAS call, column-major, with cuBLAS's own parameter names:
//   Syrk: cublas<t>syrk(uplo, trans, n, k, alpha, A, lda, beta, C, ldc)         C = op(A) op(A)^T
//   Symm: cublas<t>symm(side, uplo, m, n, alpha, A, lda, B, ldb, beta, C, ldc)  C = A B or B A
//   Gemm: cublas<t>gemmStridedBatched(transa, transb, m, n, k, alpha, A, lda, strideA,
//                                     B, ldb, strideB, beta, C, ldc, strideC, batch)
// (a row-major matrix is the column-major matrix of its transpose: see codegen_cuda.cpp).
struct Matmul {
    enum class Kind { Syrk, Symm, Gemm } kind = Kind::Gemm;
    bool lower = true;        // uplo: CUBLAS_FILL_MODE_LOWER (Syrk, Symm)
    bool right = false;       // side: CUBLAS_SIDE_RIGHT (Symm)
    bool trans_a = false;     // trans (Syrk), transa (Gemm)
    bool trans_b = false;     // transb (Gemm)
    int m = 0, n = 0, k = 0;
    double alpha = 1, beta = 0;
    Operand a, b, c;
    int lda = 0, ldb = 0, ldc = 0;
    std::int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // elements (Gemm)
    int batch = 1;                                         // Gemm
};

// A decision the host makes between ops: once each of `count` matrices has converged (the
// unsigned flags at `done` are all nonzero), go on at op `resume`, skipping the steps left. The
// cubic schedule checks every kConvergedEvery steps, so a run stops close to where the CPU's
// does; the ops between checks are each one CUDA graph.
struct Converged {
    Operand done;
    int count = 0;
    std::size_t resume = 0;
};
inline constexpr int kConvergedEvery = 4;

struct Op {
    std::variant<Launch, Matmul, Converged> what;
    std::string note;  // what the step computes, for the listing
};

enum class MatmulMode {
    Auto,       // symmetric (syrk, symm) for a group of one matrix, strided-batched gemm otherwise
    Symmetric,  // always syrk and symm, one call per matrix
    Batched,    // always strided-batched gemm, one call per step for the whole group
};

// How gradients and updates are held in memory. Compute: in `type`, as the work buffers.
// BF16: bfloat16 (as its bits, `unsigned short`) with f32 compute: the kernels that read a
// gradient widen it to f32, the kernels that write an update round it to bf16 (nearest even,
// NaN kept NaN); the work buffers and cuBLAS stay f32. The two conversions are small device
// functions written into the source (modc_bf16_to_f32, modc_f32_to_bf16), so it still
// includes no header.
enum class Storage : std::uint8_t { Compute, BF16 };

struct CudaOptions {
    ElementType type = ElementType::F32;
    Storage storage = Storage::Compute;  // BF16 needs type F32
    MatmulMode matmul = MatmulMode::Auto;
    unsigned block = 256;      // threads per block of every kernel
    unsigned max_grid = 1024;  // blocks along x at most (the kernels loop over the rest)
    unsigned max_reduce_grid = 256;  // the same for reductions, which end in one atomic per thread
};

struct Program {
    std::string network;
    std::string schedule;
    ElementType type = ElementType::F32;
    Storage storage = Storage::Compute;
    std::string source;                // CUDA C++
    std::vector<std::string> kernels;  // every kernel the source defines, in order
    std::vector<Op> ops;
    std::array<std::int64_t, kWorkBuffers> bytes{};  // of each work buffer (0: unused)
    std::size_t leaf_count = 0;
    std::vector<std::int64_t> leaf_elements;         // by leaf index

    // Bytes per element of a gradient or update (2 for BF16, else that of `type`).
    std::int64_t tensor_element_size() const {
        return storage == Storage::BF16 ? 2 : type == ElementType::F32 ? 4 : 8;
    }
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
// One line per op: "g0_sumsq<<<(10, 1, 1), (256, 1, 1)>>>(grad[0], Scratch+0)", "cublasSsyrk(...)".
std::string describe(const Op& op, ElementType type);

// Kernels whose names are new to CUDA (the rest are KernelNames').
struct CudaKernelNames {
    static std::string clear(std::size_t g);
    static std::string sumsq(std::size_t g);
    static std::string converged(std::size_t g);
    static std::string maxabs(std::size_t g);
    static std::string argmax(std::size_t g);
};

}  // namespace modc::cuda
