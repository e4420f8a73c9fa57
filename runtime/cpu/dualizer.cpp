#include "dualizer.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/diagnostics.hpp"

namespace modc::cpu {

namespace {

ElementType element_type(float) { return ElementType::F32; }
ElementType element_type(double) { return ElementType::F64; }

// C = X X^T, upper triangle (X is m x k, row-major).
void syrk(int m, int k, const float* x, float* c) {
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, k, 1.0f, x, k, 0.0f, c, m);
}
void syrk(int m, int k, const double* x, double* c) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, k, 1.0, x, k, 0.0, c, m);
}
// C += A B, A symmetric m x m (upper triangle read), B and C m x n.
void symm(int m, int n, const float* a, const float* b, float* c) {
    cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, m, n, 1.0f, a, m, b, n, 1.0f, c, n);
}
void symm(int m, int n, const double* a, const double* b, double* c) {
    cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, m, n, 1.0, a, m, b, n, 1.0, c, n);
}
// C = A B (A m x k, B k x n).
void gemm(int m, int n, int k, const float* a, const float* b, float* c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
}
void gemm(int m, int n, int k, const double* a, const double* b, double* c) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0, a, k, b, n, 0.0, c, n);
}
// Thin SVD of the m x n matrix x (m <= n), destroying x.
int gesdd(int m, int n, float* x, float* s, float* u, float* vt) {
    return LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', m, n, x, n, s, u, m, vt, n);
}
int gesdd(int m, int n, double* x, double* s, double* u, double* vt) {
    return LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', m, n, x, n, s, u, m, vt, n);
}

}  // namespace

template <class T>
struct Dualizer<T>::Kernels {
    using Normalize = void(const T*, T*, std::int64_t);
    using Symmetrize = void(T*);
    using Poly = void(T*, const T*, const T*);
    using Axpy = void(T*, const T*);
    using Change = double(const T*, const T*);
    using Finish = void(T*, const T*, std::int64_t);
    using Closed = void(T*, const T*, T*);

    Normalize* normalize = nullptr;
    Symmetrize* symmetrize = nullptr;
    Change* change = nullptr;
    std::vector<Poly*> poly;  // by step index
    std::vector<Axpy*> axpy;
    std::vector<Finish*> finish;  // by member
    std::vector<Closed*> closed;
};

template <class T>
Dualizer<T>::Dualizer(kp::KernelPlan plan) : plan_(std::move(plan)) {
    jit_ = std::make_unique<Jit>(codegen_llvm(plan_, element_type(T{})));
    std::size_t matrix = 0, gram = 0, scratch = 0;
    for (std::size_t g = 0; g < plan_.groups.size(); ++g) {
        const auto& group = plan_.groups[g];
        Kernels k;
        bool orthogonal = group.map == MapKind::Orthogonalize || group.map == MapKind::OrthogonalizeSlices;
        if (orthogonal) {
            auto m = static_cast<std::size_t>(group.small()), n = static_cast<std::size_t>(group.large());
            matrix = std::max(matrix, m * n);
            gram = std::max(gram, m * m);
            k.normalize = jit_->function<typename Kernels::Normalize>(KernelNames::normalize(g));
            k.symmetrize = jit_->function<typename Kernels::Symmetrize>(KernelNames::symmetrize(g));
            k.poly.resize(group.steps.size());
            k.axpy.resize(group.steps.size());
            for (std::size_t s = 0; s < group.steps.size(); ++s) {
                auto kind = group.steps[s].kind;
                if (kind == kp::StepKind::NewtonSchulz || kind == kp::StepKind::IterateToConvergence) {
                    k.poly[s] = jit_->function<typename Kernels::Poly>(KernelNames::poly(g, s));
                    k.axpy[s] = jit_->function<typename Kernels::Axpy>(KernelNames::axpy(g, s));
                }
                if (kind == kp::StepKind::IterateToConvergence)
                    k.change = jit_->function<typename Kernels::Change>(KernelNames::change(g));
            }
            for (std::size_t j = 0; j < group.members.size(); ++j)
                k.finish.push_back(jit_->function<typename Kernels::Finish>(KernelNames::finish(g, j)));
        } else {
            // Column sums are kept in double (codegen_llvm: normalize_columns).
            scratch = std::max(scratch, static_cast<std::size_t>(group.cols) * (sizeof(double) / sizeof(T)));
            for (std::size_t j = 0; j < group.members.size(); ++j)
                k.closed.push_back(jit_->function<typename Kernels::Closed>(KernelNames::closed(g, j)));
        }
        kernels_.push_back(std::move(k));
    }
    x_.resize(matrix);
    y_.resize(matrix);
    a_.resize(gram);
    aa_.resize(gram);
    b_.resize(gram);
    scratch_.resize(scratch);
    bool exact = false;
    for (const auto& g : plan_.groups)
        for (const auto& s : g.steps) exact |= s.kind == kp::StepKind::SvdPolar;
    if (exact) {
        singular_.resize(static_cast<std::size_t>(std::sqrt(static_cast<double>(gram))) + 1);
        u_.resize(gram);
        vt_.resize(matrix);
    }
}

template <class T>
Dualizer<T>::~Dualizer() = default;

template <class T>
void Dualizer<T>::newton_schulz_step(std::size_t g, std::size_t step, T*& x, T*& y) {
    const auto& group = plan_.groups[g];
    const auto& k = kernels_[g];
    int m = static_cast<int>(group.small()), n = static_cast<int>(group.large());
    syrk(m, n, x, a_.data());  // A = X X^T
    if (group.steps[step].coeffs.c != 0) {
        k.symmetrize(a_.data());
        syrk(m, m, a_.data(), aa_.data());  // A A = A A^T, A symmetric
    }
    k.poly[step](b_.data(), a_.data(), aa_.data());  // B = b A + c A A
    k.axpy[step](y, x);                              // Y = a X
    symm(m, n, b_.data(), x, y);                     // Y += B X
    std::swap(x, y);
}

template <class T>
void Dualizer<T>::svd_polar(const kp::Group& group, T* x) {
    int m = static_cast<int>(group.small()), n = static_cast<int>(group.large());
    int info = gesdd(m, n, x, singular_.data(), u_.data(), vt_.data());
    MODC_ASSERT(info == 0, "LAPACK gesdd failed with info " + std::to_string(info));
    // U V^T over the singular values that are not zero to working precision.
    T tolerance = static_cast<T>(std::max(m, n)) * std::numeric_limits<T>::epsilon() * singular_[0];
    for (int j = 0; j < m; ++j)
        if (!(singular_[static_cast<std::size_t>(j)] > tolerance))
            for (int i = 0; i < m; ++i) u_[static_cast<std::size_t>(i * m + j)] = 0;
    gemm(m, n, m, u_.data(), vt_.data(), x);
}

template <class T>
void Dualizer<T>::orthogonalize(std::size_t g, const T* grad, T* update, std::size_t member, std::int64_t slice) {
    const auto& group = plan_.groups[g];
    const auto& k = kernels_[g];
    T* x = x_.data();
    T* y = y_.data();
    for (std::size_t s = 0; s < group.steps.size(); ++s) {
        const auto& step = group.steps[s];
        switch (step.kind) {
            case kp::StepKind::Normalize: k.normalize(grad, x, slice); break;
            case kp::StepKind::SvdPolar:
                k.normalize(grad, x, slice);  // the polar factor does not depend on the scale
                svd_polar(group, x);
                break;
            case kp::StepKind::NewtonSchulz: newton_schulz_step(g, s, x, y); break;
            case kp::StepKind::IterateToConvergence: {
                double tolerance = std::max(step.tolerance, 30.0 * std::numeric_limits<T>::epsilon());
                for (int i = 0; i < step.max_steps; ++i) {
                    newton_schulz_step(g, s, x, y);
                    if (k.change(y, x) <= tolerance) break;
                }
                break;
            }
            case kp::StepKind::Finish: k.finish[member](update, x, slice); break;
            default: MODC_ASSERT(false, "not an orthogonalisation step");
        }
    }
}

template <class T>
void Dualizer<T>::run(const T* const* grads, T* const* updates) {
    for (std::size_t g = 0; g < plan_.groups.size(); ++g) {
        const auto& group = plan_.groups[g];
        bool orthogonal = group.map == MapKind::Orthogonalize || group.map == MapKind::OrthogonalizeSlices;
        for (std::size_t j = 0; j < group.members.size(); ++j) {
            auto leaf = static_cast<std::size_t>(group.members[j].leaf);
            if (orthogonal) {
                for (std::int64_t s = 0; s < group.slices; ++s) orthogonalize(g, grads[leaf], updates[leaf], j, s);
            } else {
                kernels_[g].closed[j](updates[leaf], grads[leaf], scratch_.data());
            }
        }
    }
}

template class Dualizer<float>;
template class Dualizer<double>;

}  // namespace modc::cpu
