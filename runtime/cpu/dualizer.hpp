// runtime/cpu: runs a kernel plan on the CPU. The JIT-compiled kernels do the elementwise
// and reduction work; CBLAS (OpenBLAS) does the matmuls, using the symmetry of X X^T and of
// b A + c A A (syrk, symm); LAPACK does the exact `svd` schedule. All buffers are allocated
// once, when the dualizer is built: nothing is allocated in run().
#pragma once
#include <memory>
#include <vector>

#include "compiler/kernel_plan.hpp"
#include "jit.hpp"

namespace modc::cpu {

template <class T>
class Dualizer {
public:
    explicit Dualizer(kp::KernelPlan plan);
    ~Dualizer();
    // grads[i] and updates[i] point at weight i's tensor (weight order), row-major.
    void run(const T* const* grads, T* const* updates);
    const kp::KernelPlan& plan() const { return plan_; }

private:
    struct Kernels;
    kp::KernelPlan plan_;
    std::unique_ptr<Jit> jit_;
    std::vector<Kernels> kernels_;
    std::vector<T> x_, y_, a_, aa_, b_, scratch_, singular_, u_, vt_;

    void orthogonalize(std::size_t g, const T* grad, T* update, std::size_t member, std::int64_t slice);
    void newton_schulz_step(std::size_t g, std::size_t step, T*& x, T*& y);
    void svd_polar(const kp::Group& group, T* x);
};

extern template class Dualizer<float>;
extern template class Dualizer<double>;

}  // namespace modc::cpu
