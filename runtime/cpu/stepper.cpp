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
Stepper<T>::Stepper(step::StepPlan plan, std::vector<std::int64_t> elements, std::vector<Constants> constants,
                    LlvmModule kernels, Dualize dualize)
    : plan_(std::move(plan)), elements_(std::move(elements)), dualize_(std::move(dualize)) {
    MODC_ASSERT(constants.size() == elements_.size(), "the stepper needs the numbers of every weight");
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
    for (std::size_t i = 0; i < elements_.size(); ++i) {
        scalars_.emplace_back(static_cast<std::size_t>(plan_.scalar_count()), 0.0);
        for (int c = 0; c < step::kWeightConsts; ++c)
            scalars_[i][static_cast<std::size_t>(plan_.const_scalar(c))] = constants[i][static_cast<std::size_t>(c)];
    }
    for (int s : plan_.axis_stats()) {
        const bool by_row = plan_.stats[static_cast<std::size_t>(s)].axis == step::Axis::Row;
        auto& sums = axis_sums_.emplace_back();
        for (const auto& c : constants)
            sums.emplace_back(static_cast<std::size_t>(c[static_cast<std::size_t>(by_row ? step::WeightConst::FanOut : step::WeightConst::FanIn)]), 0.0);
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
void Stepper<T>::step(T* const* weights, const T* const* grads, const double* hypers, long long step) {
    for (auto& scalars : scalars_) {
        std::copy(hypers, hypers + plan_.hypers.size(), scalars.begin());
        scalars[static_cast<std::size_t>(plan_.step_scalar())] = static_cast<double>(step);
    }
    const std::vector<int> axis_stats = plan_.axis_stats();
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
            for (std::size_t a = 0; a < axis_stats.size(); ++a)  // double sums, passed with the tensors
                buffers[static_cast<std::size_t>(plan_.stat_buffer(axis_stats[a]))] = reinterpret_cast<T*>(axis_sums_[a][i].data());
            kernels_[k][i](buffers.data(), scalars_[i].data());
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
