#include "runtime/cpu/dualizer.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

#include "support/diagnostics.hpp"

namespace modc::cpu {

namespace {

// C = A B (A m x k, B k x n).
void gemm(int m, int n, int k, const double* a, const double* b, double* c) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0, a, k, b, n, 0.0, c, n);
}
// Thin SVD of the m x n matrix x (m <= n), destroying x.
int gesdd(int m, int n, double* x, double* s, double* u, double* vt) {
    return LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', m, n, x, n, s, u, m, vt, n);
}

bool orthogonal(const kp::Group& g) { return orthogonalizes(g.map); }

// OpenBLAS's thread count for a scope: one while items run side by side (each call then runs
// in its caller's thread), restored afterwards. The setting is process-wide.
class BlasThreads {
public:
    explicit BlasThreads(int n) : saved_(openblas_get_num_threads()) { openblas_set_num_threads(n); }
    ~BlasThreads() { openblas_set_num_threads(saved_); }
    BlasThreads(const BlasThreads&) = delete;
    BlasThreads& operator=(const BlasThreads&) = delete;

private:
    int saved_;
};

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
    // oneDNN's primitives of an orthogonalising group, for the items that run alone (all
    // threads) and for those that share the cores (one thread); null where not needed.
    std::unique_ptr<OneDnnGroupPrimitives> onednn_alone, onednn_shared;
};

// The buffers of one thread: X and Y (m x n), the m x m matrices of a step (A, A A, B or P,
// and for Gram Newton-Schulz Q and a spare), the closed forms' scratch, and the SVD's input and
// outputs (in double whatever T is: see svd_polar).
template <class T>
struct Dualizer<T>::Workspace {
    std::vector<T> x, y, a, aa, b, q, t, scratch;
    std::vector<double> wide, singular, u, vt;
    // The matmuls of each orthogonalising group this thread runs, by group: [0] sharing the
    // cores, [1] alone.
    std::vector<std::array<std::unique_ptr<Products<T>>, 2>> products;
    Bf16Buffers bf16;
    // oneDNN's scratchpad, shared by all of the thread's products (they run one at a time).
    struct alignas(64) Line {
        unsigned char bytes[64];
    };
    std::vector<Line> scratchpad;

    // scratchpad: the bytes of oneDNN's scratchpad the group's products need on this thread.
    void fit(const kp::Group& g, std::size_t scratchpad_bytes) {
        auto grow = [](auto& v, std::size_t n) { v.resize(std::max(v.size(), n)); };
        if (!orthogonal(g)) {
            // Column sums are kept in double (codegen_llvm: normalize_columns).
            grow(scratch, static_cast<std::size_t>(g.cols) * (sizeof(double) / sizeof(T)));
            return;
        }
        auto m = static_cast<std::size_t>(g.small()), n = static_cast<std::size_t>(g.large());
        for (auto* v : {&x, &y}) grow(*v, m * n);
        grow(scratchpad, (scratchpad_bytes + sizeof(Line) - 1) / sizeof(Line));
        for (auto* v : {&a, &aa, &b}) grow(*v, m * m);
        if (g.runs_gram())
            for (auto* v : {&q, &t}) grow(*v, m * m);
        for (const auto& s : g.steps)
            if (s.kind == kp::StepKind::SvdPolar) {
                grow(wide, m * n);
                grow(singular, m);
                grow(u, m * m);
                grow(vt, m * n);
            }
    }
};

template <class T>
Dualizer<T>::Dualizer(kp::KernelPlan plan, LlvmModule kernels, unsigned threads) : plan_(std::move(plan)) {
    MODC_ASSERT(kernels.module, "the dualizer needs the generated kernels of its plan");
    jit_ = std::make_unique<Jit>(std::move(kernels));
    for (std::size_t g = 0; g < plan_.groups.size(); ++g) {
        const auto& group = plan_.groups[g];
        Kernels k;
        if (orthogonal(group)) {
            k.normalize = jit_->function<typename Kernels::Normalize>(KernelNames::normalize(g));
            k.symmetrize = jit_->function<typename Kernels::Symmetrize>(KernelNames::symmetrize(g));
            k.poly.resize(group.steps.size());
            k.axpy.resize(group.steps.size());
            for (std::size_t s = 0; s < group.steps.size(); ++s) {
                auto kind = group.steps[s].kind;
                if (kind == kp::StepKind::NewtonSchulz || kind == kp::StepKind::IterateToConvergence) {
                    k.poly[s] = jit_->function<typename Kernels::Poly>(KernelNames::poly(g, s));
                    if (!group.gram) k.axpy[s] = jit_->function<typename Kernels::Axpy>(KernelNames::axpy(g, s));
                }
                if (kind == kp::StepKind::IterateToConvergence)
                    k.change = jit_->function<typename Kernels::Change>(KernelNames::change(g));
            }
            for (std::size_t j = 0; j < group.members.size(); ++j)
                k.finish.push_back(jit_->function<typename Kernels::Finish>(KernelNames::finish(g, j)));
        } else {
            for (std::size_t j = 0; j < group.members.size(); ++j)
                k.closed.push_back(jit_->function<typename Kernels::Closed>(KernelNames::closed(g, j)));
        }
        kernels_.push_back(std::move(k));
        double cost = kp::matrix_cost(group);
        for (std::size_t j = 0; j < group.members.size(); ++j)
            for (std::int64_t s = 0; s < (orthogonal(group) ? group.slices : 1); ++s) items_.push_back({g, j, s, cost});
    }
    std::stable_sort(items_.begin(), items_.end(), [](const Item& l, const Item& r) { return l.cost > r.cost; });
    for (const auto& item : items_) {
        if (leaf_of(item) >= items_per_leaf_.size()) items_per_leaf_.resize(leaf_of(item) + 1);
        ++items_per_leaf_[leaf_of(item)];
    }

    threads_ = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
    // An item worth more than its share of the cores runs alone, on all of them.
    double rest = 0;
    for (const auto& item : items_) rest += item.cost;
    while (shared_items_ < items_.size() && items_[shared_items_].cost * threads_ > rest)
        rest -= items_[shared_items_++].cost;
    if (items_.size() - shared_items_ < 2) threads_ = 1;
    if (threads_ == 1) shared_items_ = items_.size();

    workspaces_.resize(threads_);
    for (auto& w : workspaces_) w.products.resize(plan_.groups.size());
    // Buffers first (the scratchpads grow to the largest group's), then the products that use them.
    std::map<std::pair<std::size_t, bool>, std::size_t> scratchpads;  // by group and alone
    for (std::size_t i = 0; i < items_.size(); ++i) {
        auto& item = items_[i];
        item.alone = i < shared_items_;
        const auto& group = plan_.groups[item.group];
        auto [it, fresh] = scratchpads.try_emplace({item.group, item.alone}, 0);
        if (fresh && orthogonal(group) && kp::newton_schulz_steps(group) > 0)
            it->second = scratchpad_bytes(group.small(), group.large(), plan_.precision, std::is_same_v<T, double>, item.alone ? 0 : 1);
        for (std::size_t t = 0; t < (item.alone ? 1 : workspaces_.size()); ++t) workspaces_[t].fit(group, it->second);
    }
    for (const auto& item : items_)
        for (std::size_t t = 0; t < (item.alone ? 1 : workspaces_.size()); ++t) bind_products(item, workspaces_[t]);
}

// The matmuls of the item's group on one thread: OpenBLAS, or oneDNN's primitives for as many
// threads as the item runs with (made the first time a thread needs them).
template <class T>
void Dualizer<T>::bind_products(const Item& item, Workspace& w) {
    const auto& group = plan_.groups[item.group];
    auto& slot = w.products[item.group][item.alone ? 1 : 0];
    if (!orthogonal(group) || kp::newton_schulz_steps(group) == 0 || slot) return;
    std::int64_t m = group.small(), n = group.large();
    if (matmul_library(m, plan_.precision, std::is_same_v<T, double>) == MatmulLibrary::OpenBlas) {
        slot = std::make_unique<Products<T>>(m, n);
        return;
    }
    auto input = plan_.precision == kp::Precision::BF16 ? onednn::Input::BF16 : onednn::Input::F32;
    auto& primitives = item.alone ? kernels_[item.group].onednn_alone : kernels_[item.group].onednn_shared;
    if (!primitives) {
        // Products::update's scales: a Gram lead's alpha, and a of each direct step after it.
        std::vector<double> update_scales;
        if (group.gram_lead > 0) update_scales.push_back(kp::gram_lead_alpha(group));
        int step = 0;
        for (const auto& s : group.steps)
            if (s.kind == kp::StepKind::NewtonSchulz && !group.gram && step++ >= group.gram_lead)
                update_scales.push_back(s.coeffs.a);
        primitives = std::make_unique<OneDnnGroupPrimitives>(m, n, input, item.alone ? 0 : 1, update_scales);
    }
    slot = std::make_unique<Products<T>>(m, n, *primitives, w.scratchpad.data(), input == onednn::Input::BF16 ? &w.bf16 : nullptr);
}

template <class T>
Dualizer<T>::~Dualizer() = default;

template <class T>
void Dualizer<T>::newton_schulz_step(std::size_t g, std::size_t step, T*& x, T*& y, Workspace& w, Products<T>& mm) {
    const auto& k = kernels_[g];
    const bool upper_only = mm.reads_upper_triangle();  // bf16 mirrors A and B as it rounds them
    mm.gram(x, w.a.data());                             // A = X X^T
    if (plan_.groups[g].steps[step].coeffs.c != 0) {
        if (!upper_only) k.symmetrize(w.a.data());
        mm.square_gram(w.a.data(), w.aa.data());  // A A = A A^T, A symmetric
    }
    k.poly[step](w.b.data(), w.a.data(), w.aa.data());  // B = b A + c A A (upper triangle)
    if (!upper_only) k.symmetrize(w.b.data());          // oneDNN reads all of B
    const auto& s = plan_.groups[g].steps[step];
    if (s.kind == kp::StepKind::NewtonSchulz && mm.updates_in_place()) {
        mm.update(w.b.data(), x, s.coeffs.a);  // X = a X + B X (X as gram() rounded it)
        return;
    }
    k.axpy[step](y, x);                                 // Y = a X
    mm.apply(w.b.data(), x, y, true, true, true);       // Y += B X (X as gram() rounded it)
    std::swap(x, y);
}

// Gram Newton-Schulz (kernel_plan.hpp, Group::gram) on X_0 in w.x; returns where the result is
// (w.y, or w.x after a restart). Per step: A A, P (poly), Q = P Q, and before every step of a
// run but its last A = P^2 A (P^2 = P P^T, then P^2 A): 6 m^3 flops instead of 3 m^2 n + m^3.
template <class T>
T* Dualizer<T>::gram_newton_schulz(std::size_t g, Workspace& w, Products<T>& mm) {
    const auto& group = plan_.groups[g];
    const auto& k = kernels_[g];
    auto m = static_cast<std::ptrdiff_t>(group.small());
    T *x = w.x.data(), *y = w.y.data();
    T *a = w.a.data(), *aa = w.aa.data(), *p = w.b.data(), *q = w.q.data(), *spare = w.t.data();
    for (const auto& [step, first, last] : kp::gram_steps(group)) {
        if (first) {
            mm.gram(x, a);  // A = G = X X^T
            k.symmetrize(a);
        }
        mm.square_gram(a, aa);   // A A
        k.poly[step](p, a, aa);  // P = a I + b A + c A A (upper triangle)
        k.symmetrize(p);
        if (first) {
            std::copy(p, p + m * m, q);  // Q = P
        } else {
            // Q = P Q, whole: mirroring its upper triangle (it is symmetric in exact arithmetic)
            // makes the result up to 4x less accurate on i^-1 spectra (bench/bf16_accuracy.py).
            mm.multiply(p, q, spare);
            std::swap(q, spare);
        }
        if (!last) {
            mm.square_gram(p, aa);  // P^2 = P P^T
            k.symmetrize(aa);
            mm.symmetric(aa, a, spare);  // A = P^2 A
            std::swap(a, spare);
            k.symmetrize(a);
        } else {
            mm.apply(q, x, y, false, false);  // X = Q X
            std::swap(x, y);
        }
    }
    return x;
}

namespace {

// out = p x + q y + r z on the upper triangle of m x m matrices (out may be x).
template <class T>
void combine_upper(std::int64_t m, T* out, double p, const T* x, double q, const T* y, double r, const T* z) {
    const T tp = static_cast<T>(p), tq = static_cast<T>(q), tr = static_cast<T>(r);
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = i; j < m; ++j) {
            auto e = i * m + j;
            out[e] = tp * x[e] + tq * y[e] + tr * z[e];
        }
}

}  // namespace

// The group's first gram_lead Newton-Schulz steps as one Gram run (kernel_plan.hpp,
// Group::gram_lead) on X_0 in x: X = alpha X_0 + Q' X_0, into x (bf16: in place) or y.
template <class T>
void Dualizer<T>::gram_lead(std::size_t g, T*& x, T*& y, Workspace& w, Products<T>& mm) {
    const auto& group = plan_.groups[g];
    const auto& k = kernels_[g];
    const bool upper_only = mm.reads_upper_triangle();  // else the products read whole matrices
    const std::int64_t m = group.small();
    T *r = w.a.data(), *rr = w.aa.data(), *z = w.b.data(), *q = w.q.data(), *t = w.t.data();
    mm.gram(x, r);  // R = X X^T
    double alpha = 1;
    int done = 0;
    for (std::size_t s = 0; s < group.steps.size() && done < group.gram_lead; ++s) {
        if (group.steps[s].kind != kp::StepKind::NewtonSchulz) continue;
        const double a = group.steps[s].coeffs.a;
        if (!upper_only) k.symmetrize(r);
        mm.square_gram(r, rr);  // R R
        k.poly[s](z, r, rr);    // Z = b R + c R R (upper triangle)
        if (!upper_only) k.symmetrize(z);
        if (done == 0) {
            std::copy(z, z + m * m, q);  // Q' = Z
        } else {
            mm.symmetric(q, z, t);                        // Q' Z
            combine_upper(m, q, a, q, alpha, z, 1.0, t);  // Q' = a Q' + alpha Z + Q' Z
            if (!upper_only) k.symmetrize(q);
        }
        alpha *= a;
        if (++done < group.gram_lead) {
            mm.symmetric(r, z, t);  // R Z
            if (!upper_only) k.symmetrize(t);
            mm.symmetric(t, z, rr);                            // (R Z) Z
            combine_upper(m, r, a * a, r, 2 * a, t, 1.0, rr);  // R = a^2 R + 2a R Z + (R Z) Z
        }
    }
    if (mm.updates_in_place()) {
        mm.update(q, x, alpha, false);  // X = alpha X + Q' X (X rounded again: the run's products reused its buffer)
        return;
    }
    const auto count = static_cast<std::size_t>(m * group.large());
    std::transform(x, x + count, y, [alpha](T v) { return static_cast<T>(alpha) * v; });
    mm.apply(q, x, y, true, true);  // Y = alpha X + Q' X
    std::swap(x, y);
}

template <class T>
void Dualizer<T>::svd_polar(const kp::Group& group, T* x, Workspace& w) {
    // In double whatever T is: sgesdd's singular vectors of small singular values are off by
    // eps_f32 / sigma, and the exact reference should only suffer the rounding of its input.
    int m = static_cast<int>(group.small()), n = static_cast<int>(group.large());
    auto count = static_cast<std::size_t>(m) * static_cast<std::size_t>(n);
    std::copy(x, x + count, w.wide.begin());
    int info = gesdd(m, n, w.wide.data(), w.singular.data(), w.u.data(), w.vt.data());
    MODC_ASSERT(info == 0, "LAPACK gesdd failed with info " + std::to_string(info));
    // U V^T over the singular values that are not zero to the input's precision (an exactly
    // rank-deficient f32 gradient, once normalised in f32, has others at its rounding level).
    double tolerance = std::max(m, n) * static_cast<double>(std::numeric_limits<T>::epsilon()) * w.singular[0];
    for (int j = 0; j < m; ++j)
        if (!(w.singular[static_cast<std::size_t>(j)] > tolerance))
            for (int i = 0; i < m; ++i) w.u[static_cast<std::size_t>(i * m + j)] = 0;
    gemm(m, n, m, w.u.data(), w.vt.data(), w.wide.data());
    std::transform(w.wide.begin(), w.wide.begin() + static_cast<std::ptrdiff_t>(count), x, [](double v) { return static_cast<T>(v); });
}

template <class T>
void Dualizer<T>::orthogonalize(const Item& item, const T* grad, T* update, Workspace& w) {
    const std::size_t g = item.group, member = item.member;
    const std::int64_t slice = item.slice;
    const auto& group = plan_.groups[g];
    const auto& k = kernels_[g];
    Products<T>* mm = w.products[g][item.alone ? 1 : 0].get();  // null for svd
    T* x = w.x.data();
    T* y = w.y.data();
    bool gram_done = false;  // Gram Newton-Schulz runs all of the group's steps at once
    int newton_schulz_done = 0;  // a Gram lead (Group::gram_lead) runs its steps at once
    for (std::size_t s = 0; s < group.steps.size(); ++s) {
        const auto& step = group.steps[s];
        switch (step.kind) {
            case kp::StepKind::Normalize: k.normalize(grad, x, slice); break;
            case kp::StepKind::SvdPolar:
                k.normalize(grad, x, slice);  // the polar factor does not depend on the scale
                svd_polar(group, x, w);
                break;
            case kp::StepKind::NewtonSchulz:
                if (newton_schulz_done++ < group.gram_lead) {
                    if (newton_schulz_done == 1) gram_lead(g, x, y, w, *mm);
                } else if (!group.gram) {
                    newton_schulz_step(g, s, x, y, w, *mm);
                } else if (!gram_done) {
                    x = gram_newton_schulz(g, w, *mm);
                    gram_done = true;
                }
                break;
            case kp::StepKind::IterateToConvergence: {
                double tolerance = std::max(step.tolerance, 30.0 * std::numeric_limits<T>::epsilon());
                for (int i = 0; i < step.max_steps; ++i) {
                    newton_schulz_step(g, s, x, y, w, *mm);
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
std::size_t Dualizer<T>::leaf_of(const Item& item) const {
    return static_cast<std::size_t>(plan_.groups[item.group].members[item.member].leaf);
}

template <class T>
void Dualizer<T>::run_item(const Item& item, const T* const* grads, T* const* updates, Workspace& w) {
    const auto& group = plan_.groups[item.group];
    auto leaf = leaf_of(item);
    if (orthogonal(group))
        orthogonalize(item, grads[leaf], updates[leaf], w);
    else
        kernels_[item.group].closed[item.member](updates[leaf], grads[leaf], w.scratch.data());
}

template <class T>
void Dualizer<T>::run(const T* const* grads, T* const* updates, const std::function<void(std::size_t)>& weight_done) {
    // Items of each weight still to run; the one that finishes a weight reports it.
    std::vector<std::atomic<int>> left(items_per_leaf_.size());
    for (std::size_t l = 0; l < left.size(); ++l) left[l] = items_per_leaf_[l];
    auto run_one = [&](const Item& item, Workspace& w) {
        run_item(item, grads, updates, w);
        if (weight_done && left[leaf_of(item)].fetch_sub(1) == 1) weight_done(leaf_of(item));
    };
    for (std::size_t i = 0; i < shared_items_; ++i) run_one(items_[i], workspaces_[0]);
    if (shared_items_ == items_.size()) return;

    BlasThreads one(1);
    std::atomic<std::size_t> next{shared_items_};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    auto work = [&](Workspace& w) {
        try {
            for (std::size_t i; (i = next.fetch_add(1)) < items_.size();) run_one(items_[i], w);
        } catch (...) {
            std::lock_guard<std::mutex> lock(failure_mutex);
            if (!failure) failure = std::current_exception();
            next = items_.size();
        }
    };
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < threads_; ++t) helpers.emplace_back(work, std::ref(workspaces_[t]));
    work(workspaces_[0]);
    for (auto& h : helpers) h.join();
    if (failure) std::rethrow_exception(failure);
}

template class Dualizer<float>;
template class Dualizer<double>;

}  // namespace modc::cpu
