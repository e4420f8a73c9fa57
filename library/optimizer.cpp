// modc::Optimizer (modc.hpp): an optimizer block compiled into an in-place step.
#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "compiler/analysis/lower_step.hpp"
#include "compiler/backend/codegen_llvm.hpp"
#include "library/compile.hpp"
#include "library/modc.hpp"
#include "runtime/cpu/stepper.hpp"
#include "support/suggest.hpp"
#ifdef MODC_WITH_CUDA
#include "compiler/backend/codegen_cuda_step.hpp"
#include "runtime/cuda/gpu_stepper.hpp"
#endif

namespace modc {

namespace {

// The numbers a block reads of one weight (step_plan.hpp: WeightConst): the weight as a
// fan_out x fan_in matrix (its first dimension, and the product of the rest), its target and scale.
std::array<double, step::kWeightConsts> weight_constants(const WeightInfo& w) {
    const double fan_out = w.shape.empty() ? 1 : static_cast<double>(w.shape[0]);
    const double fan_in = fan_out > 0 ? static_cast<double>(w.elements()) / fan_out : 0;
    std::array<double, step::kWeightConsts> c{};
    c[static_cast<std::size_t>(step::WeightConst::FanIn)] = fan_in;
    c[static_cast<std::size_t>(step::WeightConst::FanOut)] = fan_out;
    c[static_cast<std::size_t>(step::WeightConst::Target)] = w.target;
    c[static_cast<std::size_t>(step::WeightConst::Scale)] = w.scale;
    return c;
}

}  // namespace

struct Optimizer::Impl {
    std::string name;
    DType dtype = DType::F32;
    std::unique_ptr<Dualizer> dualizer;  // stable address: the steppers call it
    std::vector<std::string> hyper_names, state_names;
    std::vector<double> hypers;
    std::vector<bool> hyper_set;
    std::vector<int> state_vars;  // state_names[j] is variable state_vars[j] of the plan
    long long steps = 0;
    // The CPU backend runs one of these; the Cuda backend runs the whole step on the GPU.
    std::unique_ptr<cpu::Stepper<float>> step32;
    std::unique_ptr<cpu::Stepper<double>> step64;
#ifdef MODC_WITH_CUDA
    std::unique_ptr<cuda::GpuStepper> gpu;
#endif

    bool on_gpu() const {
#ifdef MODC_WITH_CUDA
        return gpu != nullptr;
#else
        return false;
#endif
    }

    // Runs f, a call into the GPU stepper, with its failures as BackendError.
    template <class F>
    static void on_device(F&& f) {
#ifdef MODC_WITH_CUDA
        try {
            f();
        } catch (const cuda::GpuError& e) {
            throw BackendError(std::string("the CUDA backend failed: ") + e.what());
        }
#else
        (void)f;
#endif
    }

    std::size_t hyper_index(const std::string& n) const {
        auto it = std::find(hyper_names.begin(), hyper_names.end(), n);
        if (it != hyper_names.end()) return static_cast<std::size_t>(it - hyper_names.begin());
        std::string hint = closest_match(n, hyper_names);
        throw std::invalid_argument("optimizer '" + name + "' has no hyperparameter '" + n + "'" +
                                    (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
    }

    int state_var(const std::string& n, std::size_t weight) const {
        if (weight >= dualizer->weights().size())
            throw std::invalid_argument("weight " + std::to_string(weight) + " is out of range (the network has " +
                                        std::to_string(dualizer->weights().size()) + ")");
        auto it = std::find(state_names.begin(), state_names.end(), n);
        if (it != state_names.end()) return state_vars[static_cast<std::size_t>(it - state_names.begin())];
        std::string hint = closest_match(n, state_names);
        throw std::invalid_argument("optimizer '" + name + "' has no state '" + n + "'" +
                                    (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
    }

    std::size_t element_size() const { return dtype == DType::F64 ? sizeof(double) : sizeof(float); }
    void* state(int var, std::size_t weight) const {
        return step64 ? static_cast<void*>(step64->var(var, weight)) : static_cast<void*>(step32->var(var, weight));
    }

    void check_hypers() const {
        for (std::size_t h = 0; h < hypers.size(); ++h)
            if (!hyper_set[h])
                throw std::invalid_argument("hyperparameter '" + hyper_names[h] + "' of optimizer '" + name +
                                            "' has no default; set it before the first step");
    }

    template <class T>
    void step(cpu::Stepper<T>* stepper, DType given, T* const* weights, const T* const* grads) {
        if (given != dtype)
            throw std::invalid_argument(std::string("this optimizer was compiled for ") +
                                        (dtype == DType::F64 ? "f64 (double)" : "f32 (float)") + " tensors");
        check_hypers();
        if (on_gpu()) {
#ifdef MODC_WITH_CUDA
            on_device([&] {
                gpu->step_host(reinterpret_cast<void* const*>(weights), reinterpret_cast<const void* const*>(grads), hypers.data(),
                               steps + 1);
            });
#endif
        } else {
            stepper->step(weights, grads, hypers.data(), steps + 1);
        }
        ++steps;
    }

    void step_device(void* const* weights, const void* const* grads, void* stream) {
        if (!on_gpu())
            throw std::invalid_argument("step_device needs the CUDA backend: optimizer '" + name +
                                        "' runs on the CPU; use step() with host pointers, or compile with Backend::Cuda");
        check_hypers();
#ifdef MODC_WITH_CUDA
        on_device([&] { gpu->step_device(weights, grads, hypers.data(), steps + 1, static_cast<CUstream>(stream)); });
#else
        (void)weights;
        (void)grads;
        (void)stream;
#endif
        ++steps;
    }
};

Optimizer::Optimizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Optimizer::Optimizer(Optimizer&&) noexcept = default;
Optimizer& Optimizer::operator=(Optimizer&&) noexcept = default;
Optimizer::~Optimizer() = default;

const std::string& Optimizer::name() const { return impl_->name; }
const Dualizer& Optimizer::dualizer() const { return *impl_->dualizer; }
const std::vector<WeightInfo>& Optimizer::weights() const { return impl_->dualizer->weights(); }
const std::vector<std::string>& Optimizer::hyperparameters() const { return impl_->hyper_names; }
const std::vector<std::string>& Optimizer::state_names() const { return impl_->state_names; }
long long Optimizer::steps() const { return impl_->steps; }

void Optimizer::set_steps(long long steps) {
    if (steps < 0) throw std::invalid_argument("the step count cannot be negative, got " + std::to_string(steps));
    impl_->steps = steps;
}

double Optimizer::hyperparameter(const std::string& name) const {
    std::size_t h = impl_->hyper_index(name);
    if (!impl_->hyper_set[h]) throw std::invalid_argument("hyperparameter '" + name + "' has no value yet");
    return impl_->hypers[h];
}

void Optimizer::set_hyperparameter(const std::string& name, double value) {
    std::size_t h = impl_->hyper_index(name);
    impl_->hypers[h] = value;
    impl_->hyper_set[h] = true;
}

void Optimizer::read_state(const std::string& name, std::size_t weight, void* data) const {
    int v = impl_->state_var(name, weight);
#ifdef MODC_WITH_CUDA
    if (impl_->gpu) return Impl::on_device([&] { impl_->gpu->read_var(v, weight, data); });
#endif
    auto bytes = static_cast<std::size_t>(weights()[weight].elements()) * impl_->element_size();
    std::memcpy(data, impl_->state(v, weight), bytes);
}

void Optimizer::write_state(const std::string& name, std::size_t weight, const void* data) {
    int v = impl_->state_var(name, weight);
#ifdef MODC_WITH_CUDA
    if (impl_->gpu) return Impl::on_device([&] { impl_->gpu->write_var(v, weight, data); });
#endif
    auto bytes = static_cast<std::size_t>(weights()[weight].elements()) * impl_->element_size();
    std::memcpy(impl_->state(v, weight), data, bytes);
}

void Optimizer::zero_state() {
#ifdef MODC_WITH_CUDA
    if (impl_->gpu) return Impl::on_device([&] { impl_->gpu->zero_state(); });
#endif
    if (impl_->step32) impl_->step32->zero_state();
    if (impl_->step64) impl_->step64->zero_state();
}

void Optimizer::step(float* const* weights, const float* const* grads) {
    impl_->step(impl_->step32.get(), DType::F32, weights, grads);
}

void Optimizer::step(double* const* weights, const double* const* grads) {
    impl_->step(impl_->step64.get(), DType::F64, weights, grads);
}

void Optimizer::step_device(void* const* weights, const void* const* grads, void* stream) {
    impl_->step_device(weights, grads, stream);
}

Optimizer compile_optimizer_file(const std::string& path, const OptimizerOptions& options) {
    return compile_optimizer_text(path, read_source(path), options);
}

Optimizer compile_optimizer_text(const std::string& name, const std::string& text, const OptimizerOptions& options) {
    if (options.dtype == DType::BF16)
        throw CompileError("the optimizer step runs on f32 or f64 weights; bf16 weights are not supported yet");
    std::unique_ptr<Compilation> c = front_end(name, text, options);
    const ast::Optimizer& block = choose_optimizer(*c, name, options.optimizer);
    std::optional<step::StepPlan> plan = lower_step(block, c->diags);
    if (!plan) throw CompileError(c->diags.render());

    auto impl = std::make_unique<Optimizer::Impl>();
    impl->name = block.name;
    impl->dtype = options.dtype;
    const DualPlan& whole = c->plans.front();
    const DualPlan stepped = options.owned.empty() ? whole : only_weights(whole, options.owned);
    // Counted against the memory limit with the dualizer's own: the weights, and per weight
    // every variable of the block and the in and out buffers of each dualize(...).
    double total = 0;
    for (const auto& l : stepped.leaves) {
        double n = 1;
        for (auto d : l.shape) n *= static_cast<double>(d);
        total += n;
    }
    const double extra = total * (options.dtype == DType::F64 ? 8 : 4) *
                         (1 + static_cast<double>(plan->vars.size()) + 2.0 * plan->dual_count);
    impl->dualizer = std::make_unique<Dualizer>(make_dualizer(stepped, options, extra));
    for (const auto& h : plan->hypers) {
        impl->hyper_names.push_back(h.name);
        impl->hypers.push_back(h.value);
        impl->hyper_set.push_back(h.has_default);
    }
    impl->state_vars = plan->state_vars();
    for (int v : impl->state_vars) impl->state_names.push_back(plan->vars[static_cast<std::size_t>(v)].name);
    std::vector<std::int64_t> elements;
    std::vector<cpu::Stepper<float>::Constants> constants;
    for (const auto& w : impl->dualizer->weights()) {
        elements.push_back(w.elements());
        constants.push_back(weight_constants(w));
        if (plan->has_axis_stats() && w.shape.size() < 2)
            throw CompileError("optimizer '" + block.name + "' takes row or column statistics (row_mean, col_mean), "
                               "which need a matrix, but weight '" + w.path + "' is a vector of " +
                               std::to_string(w.elements()) + "; give it a rule of its own");
    }
    Dualizer* dualizer = impl->dualizer.get();
    if (runs_cuda(options.backend)) {  // make_dualizer has checked that it can run here
#ifdef MODC_WITH_CUDA
        cuda::CudaOptions co;
        co.type = options.dtype == DType::F64 ? ElementType::F64 : ElementType::F32;
        cuda::StepProgram program;
        try {
            program = cuda::codegen_cuda_step(*plan, elements, co);
        } catch (const cuda::Unsupported& e) {
            throw CompileError(e.what());
        }
        cuda::GpuOptions go;
        go.cache = nvrtc_cache(*dualizer);
        go.simulate = options.backend == Backend::CudaSim;
        go.host_cache = host_build_cache(*dualizer);
        go.device = options.device;  // the dualizer's
        Optimizer::Impl::on_device([&] {
            impl->gpu = std::make_unique<cuda::GpuStepper>(std::move(program), std::move(*plan), elements, constants,
                                                           *gpu_dualizer(*dualizer), go);
        });
#endif
    } else if (options.dtype == DType::F64) {
        LlvmModule kernels = codegen_llvm_step(*plan, elements, ElementType::F64);
        impl->step64 = std::make_unique<cpu::Stepper<double>>(
            std::move(*plan), elements, constants, std::move(kernels),
            [dualizer](const double* const* in, double* const* out) { dualizer->run(in, out); });
    } else {
        LlvmModule kernels = codegen_llvm_step(*plan, elements, ElementType::F32);
        impl->step32 = std::make_unique<cpu::Stepper<float>>(
            std::move(*plan), elements, constants, std::move(kernels),
            [dualizer](const float* const* in, float* const* out) { dualizer->run(in, out); });
    }
    return Optimizer(std::move(impl));
}

}  // namespace modc
