// The CUDA program: what compiler/backend/codegen_cuda writes and runtime/cuda runs. One CUDA
// C++ translation unit (`source`) and the run as a list of ops on one stream (kernel launches,
// cuBLAS calls with their column-major parameters, host decisions); see codegen_cuda.hpp for
// how a kernel plan becomes one.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "program/cpu_program.hpp"  // ElementType, KernelNames
#include "program/kernel_plan.hpp"  // kp::Precision

namespace modc::cuda {

// The buffers a program uses. X .. Qh are work buffers the runtime allocates once (sizes in
// Program::bytes); Grad and Update are weight `leaf`'s tensors. X .. T hold the compute type
// (Q and T: Gram Newton-Schulz only). Xh .. Th hold what X .. T hold, in bf16, where the GEMMs
// run in bf16 (precision bf16): Newton-Schulz's state between the GEMMs.
enum class Buffer : std::uint8_t { X, Y, A, AA, B, Q, T, Scratch, Xh, Yh, Ah, AAh, Bh, Qh, Th, Grad, Update };
inline constexpr int kWorkBuffers = 15;  // X .. Th
const char* to_string(Buffer b);
inline bool is_bf16(Buffer b) { return b >= Buffer::Xh && b <= Buffer::Th; }

struct Operand {
    Buffer buffer = Buffer::X;
    std::int64_t offset = 0;  // bytes
    int leaf = -1;            // Grad and Update
};

// What a kernel launch computes and moves, as its generator counts it (the cost listing,
// program/cuda_cost.hpp): arithmetic on elements, and bytes of global memory each way.
struct Work {
    double flops = 0;
    std::int64_t read = 0, written = 0;
};

struct Launch {
    std::string kernel;
    std::array<unsigned, 3> grid{1, 1, 1};
    std::array<unsigned, 3> block{1, 1, 1};
    std::vector<Operand> args;  // every kernel parameter is a pointer
    Work work;
};

// One cuBLAS call, column-major, with cuBLAS's own parameter names:
//   Syrk: cublas<t>syrk(uplo, trans, n, k, alpha, A, lda, beta, C, ldc)         C = op(A) op(A)^T
//   Symm: cublas<t>symm(side, uplo, m, n, alpha, A, lda, B, ldb, beta, C, ldc)  C = A B or B A
//   Gemm: cublas<t>gemmStridedBatched(transa, transb, m, n, k, alpha, A, lda, strideA,
//                                     B, ldb, strideB, beta, C, ldc, strideC, batch)
// (a row-major matrix is the column-major matrix of its transpose: see codegen_cuda_products.cpp).
// `precision` F32 is the routine of the compute type (S or D). TF32 and BF16 are always Gemm,
// as cublasGemmStridedBatchedEx (syrk and symm have no such forms) with f32 accumulation:
// CUBLAS_COMPUTE_32F_FAST_TF32 on f32 A, B and C; CUBLAS_COMPUTE_32F on bf16 A and B
// (CUDA_R_16BF, the bf16 buffers) and a C in bf16 or f32, as its buffer says.
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
    kp::Precision precision = kp::Precision::F32;
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

// How gradients and updates are held in memory. Compute: in `type`, as the work buffers.
// BF16: bfloat16 (as its bits, `unsigned short`) with f32 compute: the kernels that read a
// gradient widen it to f32, the kernels that write an update round it to bf16 (nearest even,
// NaN kept NaN); the work buffers and cuBLAS stay f32. The two conversions are small device
// functions written into the source (modc_bf16_to_f32, modc_f32_to_bf16), so it still
// includes no header.
enum class Storage : std::uint8_t { Compute, BF16 };

struct Program {
    std::string network;
    std::string schedule;
    ElementType type = ElementType::F32;
    Storage storage = Storage::Compute;
    kp::Precision precision = kp::Precision::F32;  // of the GEMMs (kernel_plan.hpp)
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

// One line per op: "g0_sumsq<<<(10, 1, 1), (256, 1, 1)>>>(grad[0], Scratch+0)", "cublasSsyrk(...)".
std::string describe(const Op& op, ElementType type, Storage storage = Storage::Compute);

// Whether an operand holds bf16: the bf16 work buffers, and gradients and updates in bf16 storage.
inline bool holds_bf16(const Operand& o, Storage storage) {
    return is_bf16(o.buffer) || ((o.buffer == Buffer::Grad || o.buffer == Buffer::Update) && storage == Storage::BF16);
}

// Kernels whose names are new to CUDA (the rest are KernelNames').
struct CudaKernelNames {
    static std::string clear(std::size_t g);
    static std::string sumsq(std::size_t g);
    static std::string converged(std::size_t g);
    static std::string maxabs(std::size_t g);
    static std::string argmax(std::size_t g);
};

}  // namespace modc::cuda
