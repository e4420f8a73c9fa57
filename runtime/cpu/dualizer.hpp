// runtime/cpu: runs a kernel plan on the CPU. The JIT-compiled kernels do the elementwise
// and reduction work; oneDNN or OpenBLAS do the matmuls, in f32 or with bf16 inputs as the
// plan's precision says (runtime/cpu/products.hpp: which library, and how each keeps the
// symmetry of X X^T and of b A + c A A); LAPACK does the exact `svd` schedule. All buffers and
// oneDNN primitives are made once, when the dualizer is built: nothing is allocated in run().
//
// The work of a run is a list of independent items (one matrix, or one closed-form leaf).
// Items too big to share the cores run first, one at a time, with all of the libraries'
// threads; the rest run side by side, one per core, each with single-threaded matmuls (oneDNN
// primitives created for one OpenMP thread) and a workspace of its own. At the sizes of real
// layers (768 x 3072) OpenBLAS's syrk gains only 1.6x from a second thread, while two matrices
// at once gain 2x.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "program/cpu_program.hpp"
#include "program/kernel_plan.hpp"
#include "runtime/cpu/jit.hpp"
#include "runtime/cpu/products.hpp"

namespace modc::cpu {

template <class T>
class Dualizer {
public:
    // kernels: codegen_llvm(plan, T's element type) (compiler/backend). threads: how many items
    // run at once (0: one per hardware thread).
    Dualizer(kp::KernelPlan plan, LlvmModule kernels, unsigned threads = 0);
    ~Dualizer();
    // grads[i] and updates[i] point at weight i's tensor (weight order), row-major.
    // weight_done(i), if given, is called (from any of the run's threads) as soon as update i is
    // complete and grads[i] is no longer read, so a caller can stream updates out.
    // Not reentrant: one run at a time per dualizer.
    void run(const T* const* grads, T* const* updates, const std::function<void(std::size_t)>& weight_done = {});
    const kp::KernelPlan& plan() const { return plan_; }
    unsigned threads() const { return threads_; }

private:
    struct Kernels;
    struct Workspace;
    struct Item {
        std::size_t group = 0, member = 0;
        std::int64_t slice = 0;
        double cost = 0;     // flops, to order the items
        bool alone = false;  // runs with all threads (before the items that share the cores)
    };
    kp::KernelPlan plan_;
    std::unique_ptr<Jit> jit_;
    std::vector<Kernels> kernels_;
    std::vector<Workspace> workspaces_;  // one per thread
    std::vector<Item> items_;            // by cost, largest first
    std::size_t shared_items_ = 0;       // items_[0, shared_items_) run alone with threaded BLAS
    std::vector<int> items_per_leaf_;    // slices make several items of one weight
    unsigned threads_ = 1;

    std::size_t leaf_of(const Item& item) const;
    void bind_products(const Item& item, Workspace& w);
    void run_item(const Item& item, const T* const* grads, T* const* updates, Workspace& w);
    void orthogonalize(const Item& item, const T* grad, T* update, Workspace& w);
    void newton_schulz_step(std::size_t g, std::size_t step, T*& x, T*& y, Workspace& w, Products<T>& mm);
    T* gram_newton_schulz(std::size_t g, Workspace& w, Products<T>& mm);
    void gram_lead(std::size_t g, T*& x, T*& y, Workspace& w, Products<T>& mm);
    void svd_polar(const kp::Group& group, T* x, Workspace& w);
};

extern template class Dualizer<float>;
extern template class Dualizer<double>;

}  // namespace modc::cpu
