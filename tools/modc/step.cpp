#include "tools/modc/step.hpp"

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>

#include "compiler/analysis/lower_step.hpp"
#include "compiler/analysis/rules.hpp"
#include "compiler/backend/codegen_cuda_step.hpp"
#include "compiler/backend/codegen_llvm.hpp"
#include "runtime/tensor_io.hpp"

namespace modc {

namespace {

int fail(const std::string& message) {
    std::cerr << "modc: error: " << message << '\n';
    return 1;
}

// Reads a tensor file and checks it against `specs`; prints every problem.
bool read_checked(const std::string& path, const std::vector<rt::TensorSpec>& specs, std::vector<rt::Tensor>& out) {
    try {
        out = rt::read_tensors(path);
    } catch (const rt::TensorError& e) {
        fail(e.what());
        return false;
    }
    auto problems = rt::validate(out, specs);
    for (const auto& p : problems) std::cerr << "modc: error: " << path << ": " << p << '\n';
    return problems.empty();
}

rt::Tensor* find(std::vector<rt::Tensor>& tensors, const std::string& name) {
    for (auto& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

template <class T>
void step_typed(Optimizer& opt, std::vector<rt::Tensor>& weights, std::vector<rt::Tensor>& grads) {
    std::vector<T*> w;
    std::vector<const T*> g;
    for (const auto& info : opt.weights()) {
        w.push_back(find(weights, info.path)->template as<T>().ptr);
        g.push_back(find(grads, info.path)->template as<T>().ptr);
    }
    opt.step(w.data(), g.data());
}

}  // namespace

int run_step(const StepArgs& a, const DualPlan& plan) {
    std::vector<rt::TensorSpec> specs;
    for (const auto& l : plan.leaves) specs.push_back({l.path, l.shape});
    std::vector<rt::Tensor> weights, grads;
    if (!read_checked(a.weights, specs, weights) || !read_checked(a.grads, specs, grads))
        return fail("nothing was written");
    const rt::DType dtype = weights.empty() ? rt::DType::F32 : weights.front().dtype;
    if (!grads.empty() && grads.front().dtype != dtype)
        return fail(std::string("the weights are ") + rt::dtype_name(dtype) + " but the gradients are " +
                    rt::dtype_name(grads.front().dtype) + "; nothing was written");
    if (dtype == rt::DType::BF16) return fail("the optimizer step runs on F32 or F64 weights, not BF16; nothing was written");

    OptimizerOptions options = a.options;
    options.network = plan.network;
    options.dtype = dtype == rt::DType::F64 ? DType::F64 : DType::F32;
    Optimizer opt = compile_optimizer_text(a.file, a.text, options);  // CompileError: reported by the caller

    for (const auto& h : a.hypers) {
        auto eq = h.find('=');
        char* end = nullptr;
        double value = eq == std::string::npos ? 0 : std::strtod(h.c_str() + eq + 1, &end);
        if (eq == std::string::npos || eq == 0 || end == h.c_str() + eq + 1 || *end != '\0' || !std::isfinite(value))
            return fail("--hyper expects NAME=NUMBER, got '" + h + "'");
        try {
            opt.set_hyperparameter(h.substr(0, eq), value);
        } catch (const std::invalid_argument& e) {
            return fail(std::string(e.what()) + "; nothing was written");
        }
    }

    if (a.step < 1) return fail("--step counts from 1 (the first step), got " + std::to_string(a.step) + "; nothing was written");
    opt.set_steps(a.step - 1);

    std::map<std::string, std::size_t> weight_index;
    for (std::size_t i = 0; i < opt.weights().size(); ++i) weight_index[opt.weights()[i].path] = i;

    // State tensors are named STATE/PATH: every state of every weight, or none (no --state).
    std::vector<rt::TensorSpec> state_specs;
    for (const auto& s : opt.state_names())
        for (const auto& l : plan.leaves)
            if (opt.has_state(s, weight_index.at(l.path))) state_specs.push_back({s + "/" + l.path, l.shape});
    if (!a.state.empty()) {
        std::vector<rt::Tensor> state;
        if (!read_checked(a.state, state_specs, state)) return fail("nothing was written");
        if (!state.empty() && state.front().dtype != dtype)
            return fail(std::string("the state is ") + rt::dtype_name(state.front().dtype) + " but the weights are " +
                        rt::dtype_name(dtype) + "; nothing was written");
        for (const auto& t : state) {
            auto slash = t.name.find('/');
            opt.write_state(t.name.substr(0, slash), weight_index.at(t.name.substr(slash + 1)), t.data.data());
        }
    }
    // Only the checks above refuse input; the std::invalid_argument left (a hyperparameter
    // without a default) is the user's too.
    try {
        if (dtype == rt::DType::F64)
            step_typed<double>(opt, weights, grads);
        else
            step_typed<float>(opt, weights, grads);
    } catch (const std::invalid_argument& e) {
        return fail(std::string(e.what()) + " (--hyper NAME=VALUE); nothing was written");
    } catch (const BackendError& e) {
        return fail(e.what());
    }

    std::vector<rt::Tensor> out_weights, out_state;
    for (const auto& info : opt.weights()) out_weights.push_back(std::move(*find(weights, info.path)));
    for (const auto& spec : state_specs) {
        auto slash = spec.name.find('/');
        rt::Tensor t{spec.name, dtype, spec.shape, {}};
        t.data.resize(static_cast<std::size_t>(t.numel()) * rt::dtype_size(dtype));
        opt.read_state(spec.name.substr(0, slash), weight_index.at(spec.name.substr(slash + 1)), t.data.data());
        out_state.push_back(std::move(t));
    }
    try {
        if (!a.out_state.empty()) rt::write_tensors(a.out_state, out_state);
        rt::write_tensors(a.out, out_weights);
    } catch (const rt::TensorError& e) {
        return fail(e.what());
    }
    return 0;
}

std::optional<std::string> emit_step(const ast::Optimizer& block, const DualPlan& plan, const std::string& emit,
                                     ElementType type, Diagnostics& diags) {
    const std::vector<ast::Optimizer> rules = rule_blocks(block);
    const std::vector<int> rule_of = bind_rules(block, plan.leaves);
    std::vector<step::StepPlan> plans;
    for (const auto& rule : rules)
        if (auto p = lower_step(rule, diags)) plans.push_back(std::move(*p));
    if (plans.size() != rules.size()) return std::nullopt;
    std::string out;
    for (std::size_t r = 0; r < plans.size(); ++r) {
        std::vector<std::int64_t> elements;
        std::string paths;
        for (std::size_t i = 0; i < plan.leaves.size(); ++i)
            if (rule_of[i] == static_cast<int>(r)) {
                const auto& l = plan.leaves[i];
                elements.push_back(WeightInfo{l.path, l.atom, l.shape}.elements());
                paths += (paths.empty() ? "" : ", ") + l.path;
            }
        const char* comment = emit == "step-plan" ? "" : emit == "step" ? "; " : "// ";
        if (!block.rules.empty()) out += std::string(comment) + "rule '" + rules[r].name + "': weights " + paths + "\n";
        if (emit == "step-plan") {
            out += step::print(plans[r]);
        } else if (emit == "step-cuda") {
            cuda::CudaOptions co;
            co.type = type;
            out += cuda::codegen_cuda_step(plans[r], elements, co).source;
        } else {
            out += print_llvm(codegen_llvm_step(plans[r], elements, type));
        }
    }
    return out;
}

}  // namespace modc
