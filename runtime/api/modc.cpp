#include "modc.hpp"

#include <fstream>
#include <sstream>
#include <variant>

#include "compiler/frontend.hpp"
#include "compiler/large_stack.hpp"
#include "compiler/kernel_plan.hpp"
#include "runtime/cpu/dualizer.hpp"

namespace modc {

std::int64_t WeightInfo::elements() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

struct Dualizer::Impl {
    std::string network;
    std::string schedule;
    DType dtype;
    std::vector<WeightInfo> weights;
    double flops = 0;
    std::variant<std::unique_ptr<cpu::Dualizer<float>>, std::unique_ptr<cpu::Dualizer<double>>> cpu;
};

Dualizer::Dualizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dualizer::Dualizer(Dualizer&&) noexcept = default;
Dualizer& Dualizer::operator=(Dualizer&&) noexcept = default;
Dualizer::~Dualizer() = default;

const std::string& Dualizer::network() const { return impl_->network; }
const std::string& Dualizer::schedule() const { return impl_->schedule; }
DType Dualizer::dtype() const { return impl_->dtype; }
const std::vector<WeightInfo>& Dualizer::weights() const { return impl_->weights; }
double Dualizer::flops() const { return impl_->flops; }

void Dualizer::run(const float* const* grads, float* const* updates) {
    auto* d = std::get_if<0>(&impl_->cpu);
    if (!d) throw std::invalid_argument("this dualizer was compiled for f64; pass double tensors");
    (*d)->run(grads, updates);
}

void Dualizer::run(const double* const* grads, double* const* updates) {
    auto* d = std::get_if<1>(&impl_->cpu);
    if (!d) throw std::invalid_argument("this dualizer was compiled for f32; pass float tensors");
    (*d)->run(grads, updates);
}

Dualizer compile_file(const std::string& path, const CompileOptions& options) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CompileError("cannot read '" + path + "'");
    std::stringstream text;
    text << in.rdbuf();
    return compile_source_text(path, text.str(), options);
}

Dualizer compile_source_text(const std::string& name, const std::string& text, const CompileOptions& options) {
    ElaborateOptions eo;
    eo.only_network = options.network;
    for (const auto& [key, value] : options.set) {
        auto n = parse_decimal(value.size() && value[0] == '-' ? value.substr(1) : value);
        if (!n) throw CompileError("parameter " + key + " must be a number, got '" + value + "'");
        eo.overrides[key] = value.size() && value[0] == '-' ? Rational(-*n) : *n;
    }
    // On a large stack of its own, so that a deeply nested file cannot overflow the caller's.
    std::unique_ptr<Compilation> c;
    run_with_large_stack([&] { c = compile_source(name, text, eo); });
    if (c->diags.has_errors()) throw CompileError(c->diags.render());
    if (c->plans.empty()) throw CompileError(name + ": the file defines no network");
    if (c->plans.size() > 1 && options.network.empty())
        throw CompileError(name + ": the file defines several networks; choose one");
    const DualPlan& plan = c->plans.front();

    const kp::Schedule* schedule = kp::find_schedule(options.schedule);
    if (!schedule) throw CompileError("unknown schedule '" + options.schedule + "'");
    std::map<std::string, const kp::Schedule*> per_leaf;
    for (const auto& [path, s] : options.leaf_schedules) {
        const kp::Schedule* found = kp::find_schedule(s);
        if (!found) throw CompileError("unknown schedule '" + s + "' for weight '" + path + "'");
        bool known = false;
        for (const auto& l : plan.leaves) known |= l.path == path;
        if (!known) throw CompileError("network '" + plan.network + "' has no weight '" + path + "'");
        per_leaf[path] = found;
    }
    kp::KernelPlan kernel_plan = kp::lower(plan, *schedule, per_leaf, kp::LowerOptions{.gram = options.gram});

    auto impl = std::make_unique<Dualizer::Impl>();
    impl->network = plan.network;
    impl->schedule = schedule->name;
    impl->dtype = options.dtype;
    for (const auto& l : plan.leaves) impl->weights.push_back({l.path, l.atom, l.shape});
    impl->flops = kp::flops(kernel_plan);
    if (options.dtype == DType::F32)
        impl->cpu = std::make_unique<cpu::Dualizer<float>>(std::move(kernel_plan), options.threads);
    else
        impl->cpu = std::make_unique<cpu::Dualizer<double>>(std::move(kernel_plan), options.threads);
    return Dualizer(std::move(impl));
}

}  // namespace modc
