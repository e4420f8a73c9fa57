// compiler/backend/codegen_cuda_products: the cuBLAS calls of the orthogonalising groups (see
// codegen_cuda_generator.hpp).
//
// Row-major matrices and cuBLAS. The plan's matrices are row-major: X (m x n) at X[i * n + j].
// cuBLAS is column-major, and the same bytes read column-major are X^T (n x m, leading
// dimension n). So, with Xc = X^T as cuBLAS sees it:
//   A = X X^T   = Xc^T Xc       syrk(trans = T, n = m, k = n, A = X, lda = n, C = A, ldc = m)
//   A A         = A^T A         syrk(trans = T, n = m, k = m, A = A, lda = m, ...)  (A symmetric)
//   X' = P X    : Xc' = Xc P    symm(side = right, m = n, n = m, A = P, lda = m, B = X, ldb = n,
//                                    C = X', ldc = n)                               (P symmetric)
// syrk writes one triangle; the column-major lower triangle (r >= c at r + c m) is the row-major
// upper one (i <= j at i m + j), which is what the CPU backend fills and what the kernels read.
// The batched forms are plain gemms with the same shapes (both triangles computed).
//
// A transposed group (a gradient G with more rows than columns, X = G^T) keeps X in G's own
// layout: G's bytes (n x m row-major) read column-major are X itself (m x n, leading dimension
// m), so no kernel transposes anything and the products take the other flags:
//   A = X X^T                   syrk(trans = N, n = m, k = n, A = X, lda = m, C = A, ldc = m)
//   X' = P X                    symm(side = left, m = m, n = n, A = P, lda = m, B = X, ldb = m,
//                                    C = X', ldc = m), or gemm(transa = T, transb = N, ...)
// and X' column-major is again G's layout, that of the update.
#include "compiler/backend/codegen_cuda_generator.hpp"

namespace modc::cuda::detail {

// The products of the orthogonalising groups, over B stacked matrices: per matrix with the
// symmetric cuBLAS routines (syrk, symm), or one strided-batched gemm for the whole group.
// X (m x n) is row-major, or column-major where `col` (a transposed group); the m x m
// matrices are symmetric, and row-major. See the top of this file for how each maps onto
// cuBLAS's column-major.

// C_b = S_b S_b^T, S_b rows x k (row-major, or column-major where `col`). syrk writes C's
// row-major upper triangle; gemm all of it.
void Generator::self_product(bool symmetric, bool col, std::int64_t B, std::int64_t rows, std::int64_t k, Buffer s, Buffer c,
                             const std::string& what) {
    const int R = static_cast<int>(rows), K = static_cast<int>(k);
    Matmul mm;
    mm.lda = col ? R : K;
    mm.ldc = R;
    if (symmetric) {
        mm.kind = Matmul::Kind::Syrk;
        mm.lower = true;
        mm.trans_a = !col;
        mm.n = R;
        mm.k = K;
        for (std::int64_t b = 0; b < B; ++b) {
            mm.a = work(s, b * rows * k);
            mm.c = work(c, b * rows * rows);
            matmul(mm, what);
        }
        return;
    }
    mm.kind = Matmul::Kind::Gemm;
    mm.trans_a = !col;
    mm.trans_b = col;
    mm.m = mm.n = R;
    mm.k = K;
    mm.a = mm.b = work(s, 0);
    mm.ldb = mm.lda;
    mm.stride_a = mm.stride_b = rows * k;
    mm.c = work(c, 0);
    mm.stride_c = rows * rows;
    mm.batch = static_cast<int>(B);
    matmul(mm, what);
}

// C_b = alpha S_b R_b, S_b m x m symmetric (symm reads its row-major upper triangle), R_b and
// C_b m x n, both row-major, or both column-major where `col`. `b_stride`: elements between
// the matrices of s, r and c (0: one matrix at the operands given).
void Generator::left_product(bool symmetric, bool col, std::int64_t B, std::int64_t m, std::int64_t n, Operand s, Operand r,
                             Operand c, double alpha, const std::string& what, double beta) {
    const int M = static_cast<int>(m), N = static_cast<int>(n);
    const std::int64_t es = element_bytes(s.buffer), er = element_bytes(r.buffer), ec = element_bytes(c.buffer);
    Matmul mm;
    mm.alpha = alpha;
    mm.beta = beta;
    mm.ldc = col ? M : N;
    if (symmetric) {  // row-major: C^T = R^T S, S on the right; column-major: C = S R, S on the left
        mm.kind = Matmul::Kind::Symm;
        mm.right = !col;
        mm.lower = true;
        mm.m = col ? M : N;
        mm.n = col ? N : M;
        mm.lda = M;
        mm.ldb = col ? M : N;
        for (std::int64_t b = 0; b < B; ++b) {
            mm.a = shifted(s, b * m * m * es);
            mm.b = shifted(r, b * m * n * er);
            mm.c = shifted(c, b * m * n * ec);
            matmul(mm, what);
        }
        return;
    }
    mm.kind = Matmul::Kind::Gemm;
    if (col) {  // C (m x n, ld m) = S R; S's bytes read column-major are S^T, so op(A) = T: S
        // itself even where it is symmetric only in exact arithmetic (Gram's Q)
        mm.trans_a = true;
        mm.m = M;
        mm.n = N;
        mm.a = s;
        mm.lda = M;
        mm.stride_a = m * m;
        mm.b = r;
        mm.ldb = M;
        mm.stride_b = m * n;
    } else {  // C^T (n x m, ld n) = R^T S
        mm.m = N;
        mm.n = M;
        mm.a = r;
        mm.lda = N;
        mm.stride_a = m * n;
        mm.b = s;
        mm.ldb = M;
        mm.stride_b = m * m;
    }
    mm.k = M;
    mm.c = c;
    mm.stride_c = m * n;
    mm.batch = static_cast<int>(B);
    matmul(mm, what);
}

// Whether the last X' = P X (or Q X) of a fixed schedule writes each member's update itself,
// scaled (alpha) and in the storage type: no X' and no finish kernel. A transposed group's X
// is column-major, and so is the product: the update's row-major layout. Not for Conv2D
// kernels, whose slices interleave in the update (no leading dimension describes one), nor
// bf16 updates of f32 or tf32 GEMMs (cuBLAS writes bf16 only from bf16 inputs).
bool Generator::into_updates(const kp::Group& g) const {
    if (g.slices != 1 || (bf16_ && !half_) || !fold_identity(g)) return false;
    for (const auto& s : g.steps)
        if (s.kind == kp::StepKind::IterateToConvergence) return false;
    return true;
}

// update_j = scale_j * (P_j X_j), P m x m symmetric (named p_name in the listing), X m x n.
void Generator::product_into_updates(const kp::Group& g, std::int64_t m, std::int64_t n, Buffer p, Buffer x,
                                     const std::string& p_name) {
    for (std::size_t j = 0; j < g.members.size(); ++j) {
        const auto b = static_cast<std::int64_t>(j);
        left_product(symmetric_, xcol_, 1, m, n, work(p, b * m * m), work(x, b * m * n), update(g.members[j].leaf),
                     g.members[j].scale, "update of " + g.members[j].path + " = scale " + p_name + " X");
    }
}

}  // namespace modc::cuda::detail
