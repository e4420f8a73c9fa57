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

std::string stat_name(const Stat& s) {
    const char* axis = s.axis == Axis::Row ? "row_" : s.axis == Axis::Col ? "col_" : "";
    return std::string(axis) + (s.mean ? "mean" : "sum");
}

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
        case NodeKind::Step: return "step";
        case NodeKind::Const: return "const";
        case NodeKind::Stat: return "stat";
        case NodeKind::RowStat: return "row_stat";
        case NodeKind::ColStat: return "col_stat";
        case NodeKind::Sqrt: return "sqrt";
        case NodeKind::Abs: return "abs";
        case NodeKind::Sign: return "sign";
        case NodeKind::Max: return "max";
        case NodeKind::Min: return "min";
        case NodeKind::Lt: return "<";
        case NodeKind::Le: return "<=";
        case NodeKind::Gt: return ">";
        case NodeKind::Ge: return ">=";
        case NodeKind::Eq: return "==";
        case NodeKind::Ne: return "!=";
        case NodeKind::Where: return "where";
    }
    return "?";
}

const char* to_string(WeightConst c) {
    switch (c) {
        case WeightConst::FanIn: return "fan_in";
        case WeightConst::FanOut: return "fan_out";
        case WeightConst::Target: return "target";
        case WeightConst::Scale: return "scale";
    }
    return "?";
}

std::vector<int> StepPlan::axis_stats() const {
    std::vector<int> out;
    for (std::size_t s = 0; s < stats.size(); ++s)
        if (stats[s].axis != Axis::All) out.push_back(static_cast<int>(s));
    return out;
}

int StepPlan::stat_buffer(int s) const {
    int k = 0;
    for (int j = 0; j < s; ++j) k += stats[static_cast<std::size_t>(j)].axis != Axis::All;
    return 2 + static_cast<int>(vars.size()) + 2 * dual_count + k;
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
        case NodeKind::Step: return "step";
        case NodeKind::Const: return to_string(static_cast<WeightConst>(n.index));
        case NodeKind::Stat:
        case NodeKind::RowStat:
        case NodeKind::ColStat: return "stat" + std::to_string(n.index);
        case NodeKind::Sqrt:
        case NodeKind::Abs:
        case NodeKind::Sign: return std::string(to_string(n.kind)) + "(" + print_node(plan, n.a) + ")";
        case NodeKind::Max:
        case NodeKind::Min:
            return std::string(to_string(n.kind)) + "(" + print_node(plan, n.a) + ", " + print_node(plan, n.b) + ")";
        case NodeKind::Lt:
        case NodeKind::Le:
        case NodeKind::Gt:
        case NodeKind::Ge:
        case NodeKind::Eq:
        case NodeKind::Ne: return binary(to_string(n.kind));
        case NodeKind::Where:
            return "where(" + print_node(plan, n.a) + ", " + print_node(plan, n.b) + ", " + print_node(plan, n.c) + ")";
    }
    return "?";
}

std::string print(const StepPlan& plan) {
    std::ostringstream out;
    out << "step plan for optimizer " << plan.optimizer << ": " << plan.segments.size() << " segments, "
        << plan.dual_count << " dualize calls";
    if (!plan.stats.empty()) out << ", " << plan.stats.size() << " statistics";
    out << "\n";
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
        for (const auto& st : plan.segments[s].stats)
            out << "  stat" << st.stat << " = " << stat_name(plan.stats.at(static_cast<std::size_t>(st.stat))) << "("
                << print_node(plan, st.value) << ")\n";
    }
    return out.str();
}

}  // namespace modc::step
