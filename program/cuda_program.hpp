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
