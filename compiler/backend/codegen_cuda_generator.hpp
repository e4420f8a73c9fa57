// compiler/backend/codegen_cuda_generator: the generator behind codegen_cuda() (codegen_cuda.hpp),
// one class whose parts live in a file each:
//   codegen_cuda.cpp                 the source's opening, the norm and block-sum helpers, kernels and
//                                    ops as text and as the run's list
//   codegen_cuda_orthogonalize.cpp   an orthogonalising group: its norms, X, the steps, the updates
//   codegen_cuda_newton_schulz.cpp   the Newton-Schulz steps (direct, Gram, to convergence)
//   codegen_cuda_products.cpp        the cuBLAS calls: row-major operands onto column-major cuBLAS
//   codegen_cuda_closed.cpp          the closed-form maps
#pragma once
#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/backend/codegen_cuda.hpp"

namespace modc::cuda::detail {

inline std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

inline std::int64_t align8(std::int64_t n) { return (n + 7) / 8 * 8; }

class Generator {
public:
    Generator(const kp::KernelPlan& plan, const CudaOptions& options);

    Program run();

private:
    const kp::KernelPlan& plan_;
    CudaOptions o_;
    Program p_;
    bool f32_ = true;
    bool bf16_ = false;    // gradients and updates stored as bf16
    kp::Precision precision_ = kp::Precision::F32;  // of the GEMMs
    bool half_ = false;    // bf16 GEMMs: X, A, A A, P and Q live in the bf16 buffers Xh .. Th
    Buffer xh_ = Buffer::Xh, yh_ = Buffer::Yh;  // bf16: the current X, and where the next goes
    std::string t_;        // the compute type
    std::string storage_t_;  // the element type of gradients and updates
    std::int64_t size_ = 4;
    std::int64_t slots_ = 1;  // doubles per sum of squares: 1 in f32, 3 in f64 (see ssq_helpers)
    std::ostringstream src_;
    std::ostringstream listing_;
    bool listing_on_ = true;

    // ---- literals and small pieces of text ----

    std::string real(double v) const {
        if (f32_) {
            std::string s = fmt("%.9g", static_cast<double>(static_cast<float>(v)));
            if (s.find_first_of(".en") == std::string::npos) s += ".0";
            return s + "f";
        }
        std::string s = fmt("%.17g", v);
        if (s.find_first_of(".en") == std::string::npos) s += ".0";
        return s;
    }
    std::string sqrt_fn() const { return f32_ ? "sqrtf" : "sqrt"; }
    // A double literal (sums of squares, norms and the factors made from them are doubles).
    static std::string wide(double v) {
        std::string s = fmt("%.17g", v);
        if (s.find_first_of(".en") == std::string::npos) s += ".0";
        return s;
    }
    // A double value back to the compute type.
    std::string from_wide(const std::string& value) const { return f32_ ? "(float)(" + value + ")" : value; }
    // Where sum of squares number `index` starts in a `double* sums`.
    std::string ssq_at(const std::string& index) const {
        return slots_ == 1 ? index : num(slots_) + " * " + (index.find_first_of(" +-*/") == std::string::npos ? index : "(" + index + ")");
    }
    std::string fabs_fn() const { return f32_ ? "fabsf" : "fabs"; }
    static std::string num(std::int64_t v) { return std::to_string(v); }
    // The index type of a loop over `count` elements: int where it fits.
    static std::string index_type(std::int64_t count) { return count <= INT_MAX ? "int" : "long long"; }
    // "var * factor", computed in a type that holds `largest`.
    static std::string product(const std::string& var, std::int64_t factor, std::int64_t largest) {
        return (largest <= INT_MAX ? var : "(long long)" + var) + " * " + num(factor);
    }

    unsigned grid_for(std::int64_t count) const {
        std::int64_t blocks = (count + o_.block - 1) / o_.block;
        return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, o_.max_grid));
    }
    // Reductions end in one atomic per thread on a few addresses: fewer threads, more work each.
    unsigned reduce_grid_for(std::int64_t count) const { return std::min(grid_for(count), o_.max_reduce_grid); }

    // `#line 12 "file.mod"` from an origin "file.mod:12".
    std::string line_directive(const std::string& origin) const;

    void header();

    // The 2-norms that normalise (||G||_F, each row or column, the whole gradient) from sums of
    // squares that neither overflow nor underflow, kept in doubles: modc_ssq_add adds v^2 to a
    // thread's partial sums, modc_ssq_flush adds those to the shared ones with atomics,
    // modc_ssq_norm takes the square root. An f32 value is squared in double, where even
    // 3.4e38^2 and 1e-45^2 stay in range: one sum. f64 squares can leave the range (1e+160 and
    // 1e-160 do), so f64 keeps three sums as LAPACK's dnrm2 does (Blue's algorithm): of the small
    // values scaled up by 2^537, the medium ones as they are, and the large ones scaled down by
    // 2^-538; the norm combines them. Fixed scales let threads add their partial sums with atomics.
    void ssq_helpers();

    // Warps per block (the last one may be partial).
    unsigned warps() const { return (o_.block + 31) / 32; }

    // modc_block_sum: acc[0 .. n) summed over the threads of a block, in every thread. The
    // kernel declares the shared arrays (block_shared). A fixed order (each warp's 32 values by
    // its first thread, then the warps' sums), so a block's sum does not depend on timing. No
    // warp shuffles: the simulator runs threads one after the other and models barriers by
    // replaying what comes before them (runtime/cuda/sim/cuda_host.h), which needs every stretch
    // between barriers to store values computed from memory as the last barrier left it (part,
    // then warps: never an array read and written in one stretch).
    void block_sum_helper();
    // The shared arrays modc_block_sum needs for n sums, declared at the top of a kernel.
    void block_shared(std::int64_t n) {
        src_ << "    __shared__ double part[" << n * o_.block << "], warps[" << n * warps() << "];\n";
    }
    // Whether one block computes a matrix's norm and normalises it, in one kernel (CudaOptions).
    bool fused_norm(std::int64_t elements) const { return elements <= o_.max_fused_norm; }

    void comment(const std::string& text) { src_ << "\n// " << text << "\n"; }

    // Starts a kernel: #line, signature, the grid-stride loop's index helpers.
    void begin(const std::string& name, const std::string& origin, const std::string& params);
    void end() { src_ << "}\n"; }
    // for (I i = first; i < count; i += stride) {
    // `largest`: the largest index computed from var (its type must hold it).
    void loop(const std::string& var, std::int64_t count, std::int64_t largest = 0) {
        src_ << "    for (" << index_type(std::max(count, largest)) << " " << var << " = blockIdx.x * blockDim.x + threadIdx.x; " << var
             << " < " << num(count) << "; " << var << " += gridDim.x * blockDim.x) {\n";
    }
    std::string ptr(const std::string& name, bool is_const = false) const {
        return std::string(is_const ? "const " : "") + t_ + "* __restrict__ " + name;
    }
    // Gradients and updates: pointers to the storage type; reads widen, writes narrow.
    std::string grad_ptr() const { return "const " + storage_t_ + "* __restrict__ grad"; }
    std::string update_ptr() const { return storage_t_ + "* __restrict__ update"; }
    std::string load_grad(const std::string& index) const {
        return bf16_ ? "modc_bf16_to_f32(grad[" + index + "])" : "grad[" + index + "]";
    }
    std::string narrow(const std::string& value) const { return bf16_ ? "modc_f32_to_bf16(" + value + ")" : value; }
    // A value of the compute type, rounded to bf16 where `half` (a GEMM input in precision bf16).
    static std::string to_half(bool half, const std::string& value) { return half ? "modc_f32_to_bf16(" + value + ")" : value; }

    // ---- the ops ----

    void note(const std::string& text) {
        if (listing_on_) listing_ << "//   " << text << "\n";
    }
    void launch(const std::string& kernel, std::array<unsigned, 3> grid, std::vector<Operand> args,
                const std::string& what, Work work);
    void matmul(Matmul mm, const std::string& what);
    Operand work(Buffer b, std::int64_t elements) const { return Operand{b, elements * (is_bf16(b) ? 2 : size_), -1}; }
    Operand bytes(Buffer b, std::int64_t offset) const { return Operand{b, offset, -1}; }
    static Operand grad(int leaf) { return Operand{Buffer::Grad, 0, leaf}; }
    static Operand update(int leaf) { return Operand{Buffer::Update, 0, leaf}; }
    // Bytes of `n` elements: of the compute type, of a gradient or update, of a bf16 copy.
    std::int64_t wide_bytes(std::int64_t n) const { return n * size_; }
    std::int64_t grad_bytes(std::int64_t n) const { return n * (bf16_ ? 2 : size_); }
    static std::int64_t half_bytes(std::int64_t n) { return n * 2; }
    std::int64_t bytes_of(Buffer b, std::int64_t n) const { return is_bf16(b) ? half_bytes(n) : wide_bytes(n); }
    // In bf16, the bf16 buffer that holds what `wide` holds in f32 (Newton-Schulz's state).
    Buffer h(Buffer wide) const {
        if (!half_) return wide;
        switch (wide) {
            case Buffer::X: return Buffer::Xh;
            case Buffer::Y: return Buffer::Yh;
            case Buffer::A: return Buffer::Ah;
            case Buffer::AA: return Buffer::AAh;
            case Buffer::B: return Buffer::Bh;
            case Buffer::Q: return Buffer::Qh;
            case Buffer::T: return Buffer::Th;
            default: return wide;
        }
    }
    void need(Buffer b, std::int64_t byte_count) {
        auto& slot = p_.bytes[static_cast<std::size_t>(b)];
        slot = std::max(slot, byte_count);
    }

    // ---- orthogonalising groups ----

    void orthogonalize(const kp::Group& g, std::size_t gi);
    std::size_t iteration_start_ = 0;
    const kp::Group* group_ = nullptr;  // the orthogonalising group being generated
    bool symmetric_ = false;  // its products: syrk and symm (else gemm)
    bool xcol_ = false;       // its X is column-major (a transposed group: see codegen_cuda_products.cpp)

    // b, i, j from a flat index e over B stacked m x m matrices.
    void emit_split(std::int64_t B, std::int64_t MM, std::int64_t m);

    // A direct step's `a X` is folded into P's diagonal (X' = P X, one product) except in tf32:
    // there the product rounds its inputs to 11 bits, and rounding P = a I + B and all of X puts
    // noise of 2^-11 ||X|| into every direction, which swamps singular values still growing
    // (the cubic schedule on 1/i^2 gradients: 0.07 from f64, against 3e-4 with Y = a X in f32
    // and Y += B X, whose rounding B confines to the directions already near 1). In bf16 X itself
    // is held in bf16, so the fold loses nothing more; Gram groups fold it in every precision.
    bool fold_identity(const kp::Group& g) const { return g.gram || precision_ != kp::Precision::TF32; }
    // P = [a I +] b A + c A A (the identity where `fold`); without it, also the kernel Y = a X.
    void emit_step_kernels(std::size_t gi, std::size_t si, const kp::Step& step, std::int64_t B, std::int64_t m,
                           std::int64_t n, const std::string& origin, bool iterate, bool fold);

    void emit_convergence_kernels(const kp::Group&, std::size_t gi, std::int64_t B, std::int64_t MN,
                                  const std::string& origin, const kp::Step& step);

    // The products of the orthogonalising groups, over B stacked matrices: per matrix with the
    // symmetric cuBLAS routines (syrk, symm), or one strided-batched gemm for the whole group.
    // X (m x n) is row-major, or column-major where `col` (a transposed group); the m x m
    // matrices are symmetric, and row-major. See the top of this file for how each maps onto
    // cuBLAS's column-major.

    // C_b = S_b S_b^T, S_b rows x k (row-major, or column-major where `col`). syrk writes C's
    // row-major upper triangle; gemm all of it.
    void self_product(bool symmetric, bool col, std::int64_t B, std::int64_t rows, std::int64_t k, Buffer s, Buffer c,
                      const std::string& what);

    // C_b = alpha S_b R_b, S_b m x m symmetric (symm reads its row-major upper triangle), R_b and
    // C_b m x n, both row-major, or both column-major where `col`. `b_stride`: elements between
    // the matrices of s, r and c (0: one matrix at the operands given).
    void left_product(bool symmetric, bool col, std::int64_t B, std::int64_t m, std::int64_t n, Operand s, Operand r,
                      Operand c, double alpha, const std::string& what, double beta = 0);
    static Operand shifted(Operand o, std::int64_t bytes) {
        o.offset += bytes;
        return o;
    }
    std::int64_t element_bytes(Buffer b) const {
        return is_bf16(b) || ((b == Buffer::Grad || b == Buffer::Update) && bf16_) ? 2 : size_;
    }

    // Whether the last X' = P X (or Q X) of a fixed schedule writes each member's update itself,
    // scaled (alpha) and in the storage type: no X' and no finish kernel. A transposed group's X
    // is column-major, and so is the product: the update's row-major layout. Not for Conv2D
    // kernels, whose slices interleave in the update (no leading dimension describes one), nor
    // bf16 updates of f32 or tf32 GEMMs (cuBLAS writes bf16 only from bf16 inputs), nor where the
    // last step adds a X apart (fold_identity).
    bool into_updates(const kp::Group& g) const;
    // update_j = scale_j * (P_j X_j), P m x m symmetric (named p_name in the listing), X m x n.
    void product_into_updates(const kp::Group& g, std::int64_t m, std::int64_t n, Buffer p, Buffer x,
                              const std::string& p_name = "P");

    // Copies A's upper triangle into its lower one (in bf16, of Ah).
    void symmetrize(std::size_t gi, std::int64_t B, std::int64_t MM, Buffer a, const std::string& what);
    Work poly_work(const kp::Coeffs& k, std::int64_t count, Buffer out) const;

    // One direct Newton-Schulz step: A = X X^T, [A A], P = a I + b A + c A A, X' = P X. In bf16
    // every GEMM reads and writes bf16 but the one that makes the last X (the cubic schedule's
    // every X), which f32 kernels read. The last step of a fixed schedule may write the updates.
    void step_ops(std::size_t gi, std::size_t si, const kp::Step& step, std::int64_t B, std::int64_t m, std::int64_t n,
                  bool iterate, Buffer x, Buffer y, std::int64_t done_at, bool last);

    // Gram Newton-Schulz (kernel_plan.hpp, Group::gram), as the CPU backend runs it: the steps on
    // m x m matrices, then X' = Q X (once, or twice with a restart). Q and T are two more m x m
    // work buffers. Returns the buffer holding the result. In bf16 the same ops on the bf16
    // buffers (h()), every GEMM writing bf16 but the last X' = Q X, which finish reads in f32.
    Buffer gram_newton_schulz(const kp::Group& g, std::size_t gi, std::int64_t B, std::int64_t m, std::int64_t n,
                              const std::string& origin);

    // ---- closed forms ----

    void closed(const kp::Group& g, std::size_t gi);
};

}  // namespace modc::cuda::detail
