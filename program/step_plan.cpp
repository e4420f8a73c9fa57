#include "program/step_plan.hpp"

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace modc::step {

namespace {

// The shortest decimal that reads back as v: 0.1, not 0.10000000000000001.
std::string number(double v) {
    char buf[32];
    for (int digits = 15; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

}  // namespace

const char* to_string(NodeKind kind) {
    switch (kind) {
        case NodeKind::Number: return "number";
        case NodeKind::Hyper: return "hyper";
        case NodeKind::Weight: return "W";
        case NodeKind::Grad: return "grad";
        case NodeKind::Var: return "var";
        case NodeKind::Dual: return "dual";
        case NodeKind::Neg: return "neg";
        case NodeKind::Add: return "add";
        case NodeKind::Sub: return "sub";
        case NodeKind::Mul: return "mul";
        case NodeKind::Div: return "div";
        case NodeKind::Pow: return "pow";
    }
    return "?";
}

int StepPlan::find_hyper(const std::string& name) const {
    for (std::size_t i = 0; i < hypers.size(); ++i)
        if (hypers[i].name == name) return static_cast<int>(i);
    return -1;
}

std::vector<int> StepPlan::state_vars() const {
    std::vector<int> out;
    for (std::size_t i = 0; i < vars.size(); ++i)
        if (vars[i].state) out.push_back(static_cast<int>(i));
    return out;
}

std::string print_node(const StepPlan& plan, int node) {
    const Node& n = plan.nodes.at(static_cast<std::size_t>(node));
    auto binary = [&](const char* op) { return "(" + print_node(plan, n.a) + " " + op + " " + print_node(plan, n.b) + ")"; };
    switch (n.kind) {
        case NodeKind::Number: return number(n.value);
        case NodeKind::Hyper: return plan.hypers.at(static_cast<std::size_t>(n.index)).name;
        case NodeKind::Weight: return "W";
        case NodeKind::Grad: return "grad";
        case NodeKind::Var: return plan.vars.at(static_cast<std::size_t>(n.index)).name;
        case NodeKind::Dual: return "dual" + std::to_string(n.index);
        case NodeKind::Neg: return "-" + print_node(plan, n.a);
        case NodeKind::Add: return binary("+");
        case NodeKind::Sub: return binary("-");
        case NodeKind::Mul: return binary("*");
        case NodeKind::Div: return binary("/");
        case NodeKind::Pow: return binary("^");
    }
    return "?";
}

std::string print(const StepPlan& plan) {
    std::ostringstream out;
    out << "step plan for optimizer " << plan.optimizer << ": " << plan.segments.size() << " segments, "
        << plan.dual_count << " dualize calls\n";
    for (const auto& h : plan.hypers)
        out << "hyper " << h.name << " = " << (h.has_default ? number(h.value) : "(no default)") << "\n";
    for (const auto& v : plan.vars) out << (v.state ? "state " : "temporary ") << v.name << "\n";
    for (std::size_t s = 0; s < plan.segments.size(); ++s) {
        out << "segment " << s << " (one elementwise pass per weight)\n";
        for (const auto& a : plan.segments[s].assigns)
            out << "  " << (a.target == kWeightTarget ? "W" : plan.vars.at(static_cast<std::size_t>(a.target)).name) << " = "
                << print_node(plan, a.value) << "\n";
        for (const auto& d : plan.segments[s].duals)
            out << "  dual" << d.dual << " = dualize(" << print_node(plan, d.value) << ")\n";
    }
    return out.str();
}

}  // namespace modc::step
