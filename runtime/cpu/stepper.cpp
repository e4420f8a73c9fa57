#include "runtime/cpu/stepper.hpp"

#include <algorithm>

#include "support/diagnostics.hpp"

namespace modc::cpu {

namespace {

template <class T>
std::vector<std::vector<T>> tensors(const std::vector<std::int64_t>& elements) {
    std::vector<std::vector<T>> out;
    for (auto n : elements) out.emplace_back(static_cast<std::size_t>(n), T(0));
    return out;
}

}  // namespace

template <class T>
Stepper<T>::Stepper(step::StepPlan plan, std::vector<std::int64_t> elements, LlvmModule kernels, Dualize dualize)
    : plan_(std::move(plan)), elements_(std::move(elements)), dualize_(std::move(dualize)) {
    MODC_ASSERT(kernels.module, "the stepper needs the generated kernels of its plan");
    jit_ = std::make_unique<Jit>(std::move(kernels));
    for (std::size_t k = 0; k < plan_.segments.size(); ++k) {
        kernels_.emplace_back();
        for (auto n : elements_) kernels_.back().push_back(jit_->function<Kernel>(KernelNames::step(k, n)));
    }
    for (std::size_t v = 0; v < plan_.vars.size(); ++v) vars_.push_back(tensors<T>(elements_));
    for (int d = 0; d < plan_.dual_count; ++d) {
        in_.push_back(tensors<T>(elements_));
        out_.push_back(tensors<T>(elements_));
    }
}

template <class T>
Stepper<T>::~Stepper() = default;

template <class T>
void Stepper<T>::zero_state() {
    for (auto& var : vars_)
        for (auto& t : var) std::fill(t.begin(), t.end(), T(0));
}

template <class T>
void Stepper<T>::step(T* const* weights, const T* const* grads, const double* hypers) {
    std::vector<T*> buffers(static_cast<std::size_t>(plan_.buffer_count()));
    for (std::size_t k = 0; k < plan_.segments.size(); ++k) {
        for (std::size_t i = 0; i < elements_.size(); ++i) {
            buffers[0] = weights[i];
            buffers[1] = const_cast<T*>(grads[i]);  // the kernels never write grad
            for (std::size_t v = 0; v < vars_.size(); ++v) buffers[static_cast<std::size_t>(plan_.var_buffer(static_cast<int>(v)))] = vars_[v][i].data();
            for (int d = 0; d < plan_.dual_count; ++d) {
                buffers[static_cast<std::size_t>(plan_.dual_in_buffer(d))] = in_[static_cast<std::size_t>(d)][i].data();
                buffers[static_cast<std::size_t>(plan_.dual_out_buffer(d))] = out_[static_cast<std::size_t>(d)][i].data();
            }
            kernels_[k][i](buffers.data(), hypers);
        }
        for (const auto& d : plan_.segments[k].duals) {
            std::vector<const T*> in;
            std::vector<T*> out;
            for (std::size_t i = 0; i < elements_.size(); ++i) {
                in.push_back(in_[static_cast<std::size_t>(d.dual)][i].data());
                out.push_back(out_[static_cast<std::size_t>(d.dual)][i].data());
            }
            dualize_(in.data(), out.data());
        }
    }
}

template class Stepper<float>;
template class Stepper<double>;

}  // namespace modc::cpu
