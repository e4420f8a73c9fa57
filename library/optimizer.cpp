// modc::Optimizer (modc.hpp): an optimizer block compiled into an in-place step. A block with
// rules (`for Linear { ... }`) is one part per rule, each with its plan, its weights and what
// runs them; a flat block is one part over every weight.
#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "compiler/analysis/lower_step.hpp"
#include "compiler/analysis/rules.hpp"
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

using Constants = std::array<double, step::kWeightConsts>;

// The numbers a block reads of one weight (step_plan.hpp: WeightConst): the weight as a
// fan_out x fan_in matrix (its first dimension, and the product of the rest), its target and scale.
Constants weight_constants(const WeightInfo& w) {
    const double fan_out = w.shape.empty() ? 1 : static_cast<double>(w.shape[0]);
    const double fan_in = fan_out > 0 ? static_cast<double>(w.elements()) / fan_out : 0;
    Constants c{};
    c[static_cast<std::size_t>(step::WeightConst::FanIn)] = fan_in;
    c[static_cast<std::size_t>(step::WeightConst::FanOut)] = fan_out;
    c[static_cast<std::size_t>(step::WeightConst::Target)] = w.target;
    c[static_cast<std::size_t>(step::WeightConst::Scale)] = w.scale;
    return c;
}

}  // namespace

struct Optimizer::Impl {
    // One rule's step over its weights.
    struct Part {
        std::string name;                    // the rule, "NAME for Linear, head"
        std::vector<std::size_t> weights;    // the optimizer's weight indices, in order
        std::vector<std::string> vars;       // the plan's variables
        std::vector<bool> state;             // which of them are state
        std::unique_ptr<Dualizer> dualizer;  // over these weights alone (null: the whole one serves)
        // The CPU backend runs one of these; the Cuda backend runs the whole step on the GPU.
        std::unique_ptr<cpu::Stepper<float>> step32;
        std::unique_ptr<cpu::Stepper<double>> step64;
#ifdef MODC_WITH_CUDA
        std::unique_ptr<cuda::GpuStepper> gpu;
#endif
    };

    std::string name;
    DType dtype = DType::F32;
    std::unique_ptr<Dualizer> dualizer;  // stable address: the steppers call it
    std::vector<std::string> hyper_names, state_names;  // state: every part's, in order of appearance
    std::vector<double> hypers;
    std::vector<bool> hyper_set;
    long long steps = 0;
    std::vector<Part> parts;
    std::vector<std::pair<std::size_t, std::size_t>> where;  // weight -> (part, index among its weights)

    bool on_gpu() const {
#ifdef MODC_WITH_CUDA
        return !parts.empty() && parts.front().gpu != nullptr;
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

    // The state variable `n` of weight `weight`: its part, its variable there, its index there.
    struct StateRef {
        Part* part;
        int var;
        std::size_t local;
    };
    StateRef state_var(const std::string& n, std::size_t weight) const {
        if (weight >= where.size())
            throw std::invalid_argument("weight " + std::to_string(weight) + " is out of range (the network has " +
                                        std::to_string(where.size()) + ")");
        if (std::find(state_names.begin(), state_names.end(), n) == state_names.end()) {
            std::string hint = closest_match(n, state_names);
            throw std::invalid_argument("optimizer '" + name + "' has no state '" + n + "'" +
                                        (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
        }
        auto [p, local] = where[weight];
        const Part& part = parts[p];
        for (std::size_t v = 0; v < part.vars.size(); ++v)
            if (part.vars[v] == n && part.state[v]) return {const_cast<Part*>(&part), static_cast<int>(v), local};
        throw std::invalid_argument("weight '" + dualizer->weights()[weight].path + "' runs the rule '" + part.name +
                                    "', which has no state '" + n + "'");
    }

    std::size_t element_size() const { return dtype == DType::F64 ? sizeof(double) : sizeof(float); }
    void* state(const StateRef& r) const {
        return r.part->step64 ? static_cast<void*>(r.part->step64->var(r.var, r.local))
                              : static_cast<void*>(r.part->step32->var(r.var, r.local));
    }

    void check_hypers() const {
        for (std::size_t h = 0; h < hypers.size(); ++h)
            if (!hyper_set[h])
                throw std::invalid_argument("hyperparameter '" + hyper_names[h] + "' of optimizer '" + name +
                                            "' has no default; set it before the first step");
    }

    // The pointers of a part's weights, from the optimizer's.
    template <class P>
    static std::vector<P> of_part(const Part& part, const P* all) {
        std::vector<P> out;
        for (std::size_t i : part.weights) out.push_back(all[i]);
        return out;
    }

    template <class T>
    void step(DType given, T* const* weights, const T* const* grads) {
        if (given != dtype)
            throw std::invalid_argument(std::string("this optimizer was compiled for ") +
                                        (dtype == DType::F64 ? "f64 (double)" : "f32 (float)") + " tensors");
        check_hypers();
        for (auto& part : parts) {
            auto w = of_part(part, weights);
            auto g = of_part(part, grads);
            if (on_gpu()) {
#ifdef MODC_WITH_CUDA
                on_device([&] {
                    part.gpu->step_host(reinterpret_cast<void* const*>(w.data()), reinterpret_cast<const void* const*>(g.data()),
                                        hypers.data(), steps + 1);
                });
#endif
            } else if constexpr (std::is_same_v<T, double>) {
                part.step64->step(w.data(), g.data(), hypers.data(), steps + 1);
            } else {
                part.step32->step(w.data(), g.data(), hypers.data(), steps + 1);
            }
        }
        ++steps;
    }

    void step_device(void* const* weights, const void* const* grads, void* stream) {
        if (!on_gpu())
            throw std::invalid_argument("step_device needs the CUDA backend: optimizer '" + name +
                                        "' runs on the CPU; use step() with host pointers, or compile with Backend::Cuda");
        check_hypers();
#ifdef MODC_WITH_CUDA
        for (auto& part : parts) {
            auto w = of_part(part, weights);
            auto g = of_part(part, grads);
            on_device([&] { part.gpu->step_device(w.data(), g.data(), hypers.data(), steps + 1, static_cast<CUstream>(stream)); });
        }
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

bool Optimizer::has_state(const std::string& name, std::size_t weight) const {
    if (weight >= impl_->where.size()) return false;
    const auto& part = impl_->parts[impl_->where[weight].first];
    for (std::size_t v = 0; v < part.vars.size(); ++v)
        if (part.vars[v] == name && part.state[v]) return true;
    return false;
}

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
    Impl::StateRef r = impl_->state_var(name, weight);
#ifdef MODC_WITH_CUDA
    if (r.part->gpu) return Impl::on_device([&] { r.part->gpu->read_var(r.var, r.local, data); });
#endif
    auto bytes = static_cast<std::size_t>(weights()[weight].elements()) * impl_->element_size();
    std::memcpy(data, impl_->state(r), bytes);
}

void Optimizer::write_state(const std::string& name, std::size_t weight, const void* data) {
    Impl::StateRef r = impl_->state_var(name, weight);
#ifdef MODC_WITH_CUDA
    if (r.part->gpu) return Impl::on_device([&] { r.part->gpu->write_var(r.var, r.local, data); });
#endif
    auto bytes = static_cast<std::size_t>(weights()[weight].elements()) * impl_->element_size();
    std::memcpy(impl_->state(r), data, bytes);
}

void Optimizer::zero_state() {
    for (auto& part : impl_->parts) {
#ifdef MODC_WITH_CUDA
        if (part.gpu) {
            Impl::on_device([&] { part.gpu->zero_state(); });
            continue;
        }
#endif
        if (part.step32) part.step32->zero_state();
        if (part.step64) part.step64->zero_state();
    }
}

void Optimizer::step(float* const* weights, const float* const* grads) { impl_->step(DType::F32, weights, grads); }

void Optimizer::step(double* const* weights, const double* const* grads) { impl_->step(DType::F64, weights, grads); }

void Optimizer::step_device(void* const* weights, const void* const* grads, void* stream) {
    impl_->step_device(weights, grads, stream);
}

Optimizer compile_optimizer_file(const std::string& path, const OptimizerOptions& options) {
    return compile_optimizer_text(path, read_source(path), options);
}

namespace {

// A part's stepper on the CPU or the GPU, over `elements` with `dualizer` between its passes.
void build_stepper(Optimizer::Impl::Part& part, step::StepPlan plan, const std::vector<std::int64_t>& elements,
                   const std::vector<Constants>& constants, Dualizer* dualizer, const OptimizerOptions& options) {
    if (runs_cuda(options.backend)) {  // make_dualizer has checked that it can run here
#ifdef MODC_WITH_CUDA
        cuda::CudaOptions co;
        co.type = options.dtype == DType::F64 ? ElementType::F64 : ElementType::F32;
        cuda::StepProgram program;
        try {
            program = cuda::codegen_cuda_step(plan, elements, co);
        } catch (const cuda::Unsupported& e) {
            throw CompileError(e.what());
        }
        cuda::GpuOptions go;
        go.cache = nvrtc_cache(*dualizer);
        go.simulate = options.backend == Backend::CudaSim;
        go.host_cache = host_build_cache(*dualizer);
        go.device = options.device;  // the dualizer's
        Optimizer::Impl::on_device([&] {
            part.gpu = std::make_unique<cuda::GpuStepper>(std::move(program), std::move(plan), elements, constants,
                                                          *gpu_dualizer(*dualizer), go);
        });
#endif
    } else if (options.dtype == DType::F64) {
        LlvmModule kernels = codegen_llvm_step(plan, elements, ElementType::F64);
        part.step64 = std::make_unique<cpu::Stepper<double>>(
            std::move(plan), elements, constants, std::move(kernels),
            [dualizer](const double* const* in, double* const* out) { dualizer->run(in, out); });
    } else {
        LlvmModule kernels = codegen_llvm_step(plan, elements, ElementType::F32);
        part.step32 = std::make_unique<cpu::Stepper<float>>(
            std::move(plan), elements, constants, std::move(kernels),
            [dualizer](const float* const* in, float* const* out) { dualizer->run(in, out); });
    }
}

}  // namespace

Optimizer compile_optimizer_text(const std::string& name, const std::string& text, const OptimizerOptions& options) {
    if (options.dtype == DType::BF16)
        throw CompileError("the optimizer step runs on f32 or f64 weights; bf16 weights are not supported yet");
    std::unique_ptr<Compilation> c = front_end(name, text, options);
    const ast::Optimizer& block = choose_optimizer(*c, name, options.optimizer);
    std::vector<step::StepPlan> plans;
    for (const auto& rule : rule_blocks(block)) {
        std::optional<step::StepPlan> plan = lower_step(rule, c->diags);
        if (!plan) throw CompileError(c->diags.render());
        plans.push_back(std::move(*plan));
    }

    auto impl = std::make_unique<Optimizer::Impl>();
    impl->name = block.name;
    impl->dtype = options.dtype;
    const DualPlan& whole = c->plans.front();
    const DualPlan stepped = options.owned.empty() ? whole : only_weights(whole, options.owned);
    // front_end has reported a weight no rule selects; the weights a rank owns may leave a rule without any.
    const std::vector<int> rule_of = bind_rules(block, stepped.leaves);
    // Counted against the memory limit with the dualizer's own: the weights, and per weight
    // every variable of its rule and the in and out buffers of each dualize(...).
    double extra = 0;
    for (std::size_t i = 0; i < stepped.leaves.size(); ++i) {
        double n = 1;
        for (auto d : stepped.leaves[i].shape) n *= static_cast<double>(d);
        const step::StepPlan& plan = plans.at(static_cast<std::size_t>(rule_of[i]));
        extra += n * (options.dtype == DType::F64 ? 8 : 4) * (1 + static_cast<double>(plan.vars.size()) + 2.0 * plan.dual_count);
    }
    impl->dualizer = std::make_unique<Dualizer>(make_dualizer(stepped, options, extra));
    for (const auto& h : plans.front().hypers) {  // every rule has the block's parameters
        impl->hyper_names.push_back(h.name);
        impl->hypers.push_back(h.value);
        impl->hyper_set.push_back(h.has_default);
    }
    const std::vector<WeightInfo>& weights = impl->dualizer->weights();
    impl->where.resize(weights.size());
    const std::vector<ast::Optimizer> rules = rule_blocks(block);
    for (std::size_t r = 0; r < plans.size(); ++r) {
        step::StepPlan& plan = plans[r];
        Optimizer::Impl::Part part;
        part.name = rules[r].name;
        std::vector<std::int64_t> elements;
        std::vector<Constants> constants;
        std::vector<std::string> paths;
        for (std::size_t i = 0; i < weights.size(); ++i) {
            if (rule_of[i] != static_cast<int>(r)) continue;
            const WeightInfo& w = weights[i];
            impl->where[i] = {impl->parts.size(), part.weights.size()};
            part.weights.push_back(i);
            paths.push_back(w.path);
            elements.push_back(w.elements());
            constants.push_back(weight_constants(w));
            if (plan.has_axis_stats() && w.shape.size() < 2)
                throw CompileError("optimizer '" + part.name + "' takes row or column statistics (row_mean, col_mean), "
                                   "which need a matrix, but weight '" + w.path + "' is a vector of " +
                                   std::to_string(w.elements()) + "; give it a rule of its own");
        }
        if (part.weights.empty()) continue;  // (another rank's weights)
        for (const auto& v : plan.vars) {
            part.vars.push_back(v.name);
            part.state.push_back(v.state);
            if (v.state && std::find(impl->state_names.begin(), impl->state_names.end(), v.name) == impl->state_names.end())
                impl->state_names.push_back(v.name);
        }
        // A rule over some of the weights that dualizes gets a dualizer over those alone.
        Dualizer* dualizer = impl->dualizer.get();
        if (plan.dual_count > 0 && part.weights.size() < weights.size()) {
            part.dualizer = std::make_unique<Dualizer>(make_dualizer(only_weights(stepped, paths), options));
            dualizer = part.dualizer.get();
        }
        build_stepper(part, std::move(plan), elements, constants, dualizer, options);
        impl->parts.push_back(std::move(part));
    }
    return Optimizer(std::move(impl));
}

}  // namespace modc
