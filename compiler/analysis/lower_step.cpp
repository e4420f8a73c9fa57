#include "compiler/analysis/lower_step.hpp"

#include <cmath>
#include <cstdlib>
#include <set>

#include "compiler/analysis/optimizer_types.hpp"

namespace modc {

namespace {

using ast::Expr;
using ast::ExprKind;
using step::NodeKind;

class StepLowering {
public:
    StepLowering(const ast::Optimizer& o, Diagnostics& diags) : opt_(o), diags_(diags) {}

    std::optional<step::StepPlan> run() {
        plan_.optimizer = opt_.name;
        for (const auto& p : opt_.params) {
            step::Hyper h{p.name, 0, p.default_value != nullptr};
            if (p.default_value) {
                auto v = constant(*p.default_value);
                if (!v) return std::nullopt;
                h.value = *v;
            }
            plan_.hypers.push_back(h);
        }
        classify_vars();
        step::Segment segment;
        for (const auto& s : opt_.statements) {
            int value = lower(*s.value);
            if (!pending_.empty() || !pending_stats_.empty()) {
                // The statement reads dualize outputs or statistics: their arguments end the segment so far.
                segment.duals = std::move(pending_);
                segment.stats = std::move(pending_stats_);
                pending_.clear();
                pending_stats_.clear();
                plan_.segments.push_back(std::move(segment));
                segment = {};
            }
            int target = s.target == "W" ? step::kWeightTarget : var_index(s.target);
            if (s.assign.symbol != "=") {
                int old = target == step::kWeightTarget ? node(NodeKind::Weight) : node(NodeKind::Var, 0, target);
                value = node(s.assign.symbol == "-=" ? NodeKind::Sub : NodeKind::Add, 0, -1, old, value);
            }
            segment.assigns.push_back({target, value});
        }
        if (!segment.assigns.empty() || plan_.segments.empty()) plan_.segments.push_back(std::move(segment));
        return ok_ ? std::optional(std::move(plan_)) : std::nullopt;
    }

private:
    const ast::Optimizer& opt_;
    Diagnostics& diags_;
    step::StepPlan plan_;
    std::vector<step::DualArg> pending_;  // dualize calls of the statement being lowered
    std::vector<step::StatArg> pending_stats_;  // and its statistics
    bool ok_ = true;

    int var_index(const std::string& name) const {
        for (std::size_t i = 0; i < plan_.vars.size(); ++i)
            if (plan_.vars[i].name == name) return static_cast<int>(i);
        return -1;
    }

    // Every assigned name but W is a variable; it is state when a step reads it before it
    // assigns it (`m = beta * m + grad`, `m += grad`), so that it carries the previous step's value.
    void classify_vars() {
        for (const auto& s : opt_.statements)
            if (s.target != "W" && var_index(s.target) < 0) plan_.vars.push_back({s.target, false});
        std::set<std::string> assigned;
        for (const auto& s : opt_.statements) {
            std::set<std::string> reads;
            names_in(*s.value, reads);
            if (s.assign.symbol != "=") reads.insert(s.target);
            for (const auto& r : reads)
                if (int v = var_index(r); v >= 0 && !assigned.count(r)) plan_.vars[static_cast<std::size_t>(v)].state = true;
            assigned.insert(s.target);
        }
    }

    static void names_in(const Expr& e, std::set<std::string>& out) {
        if (e.kind == ExprKind::Name) out.insert(e.text);
        for (const auto& o : e.operands) names_in(*o, out);
        for (const auto& a : e.args) names_in(*a.value, out);
    }

    int node(NodeKind kind, double value = 0, int index = -1, int a = -1, int b = -1, int c = -1) {
        step::Node n{kind, value, index, a, b, c, false};
        auto scalar = [&](int child) { return child < 0 || plan_.nodes[static_cast<std::size_t>(child)].scalar; };
        if (kind == NodeKind::Number || kind == NodeKind::Hyper || kind == NodeKind::Step || kind == NodeKind::Const ||
            kind == NodeKind::Stat)
            n.scalar = true;
        if (a >= 0) n.scalar = scalar(a) && scalar(b) && scalar(c);
        plan_.nodes.push_back(n);
        return static_cast<int>(plan_.nodes.size() - 1);
    }
    int unary(NodeKind kind, int a) { return node(kind, 0, -1, a); }
    int binary(NodeKind kind, int a, int b) { return node(kind, 0, -1, a, b); }

    // A statistic of value over the weight, summed at the end of the segment before the
    // statement: the node that reads it.
    int statistic(step::Axis axis, bool mean, int value) {
        int s = static_cast<int>(plan_.stats.size());
        plan_.stats.push_back({axis, mean});
        pending_stats_.push_back({s, value});
        NodeKind kind = axis == step::Axis::All ? NodeKind::Stat : axis == step::Axis::Row ? NodeKind::RowStat : NodeKind::ColStat;
        return node(kind, 0, s);
    }

    int call(const Expr& e) {
        const opt_types::Function* f = opt_types::find_function(e.text);
        MODC_ASSERT(f, "the type check let function '" + e.text + "' through");
        std::vector<int> args;
        for (const auto& a : e.args) args.push_back(lower(*a.value));
        using opt_types::Fn;
        using step::Axis;
        switch (f->fn) {
            case Fn::Dualize: {
                int dual = plan_.dual_count++;
                pending_.push_back({dual, args[0]});
                return node(NodeKind::Dual, 0, dual);
            }
            case Fn::Sqrt: return unary(NodeKind::Sqrt, args[0]);
            case Fn::Abs: return unary(NodeKind::Abs, args[0]);
            case Fn::Sign: return unary(NodeKind::Sign, args[0]);
            case Fn::Max: return binary(NodeKind::Max, args[0], args[1]);
            case Fn::Min: return binary(NodeKind::Min, args[0], args[1]);
            case Fn::Clamp: return binary(NodeKind::Min, binary(NodeKind::Max, args[0], args[1]), args[2]);
            case Fn::Where: return node(NodeKind::Where, 0, -1, args[0], args[1], args[2]);
            case Fn::Sum: return statistic(Axis::All, false, args[0]);
            case Fn::Mean: return statistic(Axis::All, true, args[0]);
            case Fn::Rms: return unary(NodeKind::Sqrt, statistic(Axis::All, true, binary(NodeKind::Mul, args[0], args[0])));
            case Fn::Norm: return unary(NodeKind::Sqrt, statistic(Axis::All, false, binary(NodeKind::Mul, args[0], args[0])));
            case Fn::Dot: return statistic(Axis::All, false, binary(NodeKind::Mul, args[0], args[1]));
            case Fn::RowMean: return statistic(Axis::Row, true, args[0]);
            case Fn::ColMean: return statistic(Axis::Col, true, args[0]);
        }
        MODC_ASSERT(false, "a function without lowering: " + e.text);
        return -1;
    }

    static NodeKind comparison(const std::string& op) {
        return op == "<" ? NodeKind::Lt : op == "<=" ? NodeKind::Le : op == ">" ? NodeKind::Gt
             : op == ">=" ? NodeKind::Ge : op == "==" ? NodeKind::Eq : NodeKind::Ne;
    }

    std::optional<double> number(const Expr& e) {
        char* end = nullptr;
        double v = std::strtod(e.text.c_str(), &end);
        if (end == e.text.c_str() || *end != '\0' || !std::isfinite(v)) {
            diags_.error(e.loc, "number '" + e.text + "' is out of range for an optimizer (a double)");
            ok_ = false;
            return std::nullopt;
        }
        return v;
    }

    int lower(const Expr& e) {
        switch (e.kind) {
            case ExprKind::Number: return node(NodeKind::Number, number(e).value_or(0));
            case ExprKind::Name:
                if (e.text == "W") return node(NodeKind::Weight);
                if (e.text == "grad") return node(NodeKind::Grad);
                if (e.text == "step") return node(NodeKind::Step);
                for (int c = 0; c < step::kWeightConsts; ++c)
                    if (e.text == step::to_string(static_cast<step::WeightConst>(c))) return node(NodeKind::Const, 0, c);
                if (int h = plan_.find_hyper(e.text); h >= 0) return node(NodeKind::Hyper, 0, h);
                return node(NodeKind::Var, 0, var_index(e.text));
            case ExprKind::Call: return call(e);
            case ExprKind::Negate: return node(NodeKind::Neg, 0, -1, lower(*e.operands[0]));
            case ExprKind::Power: {
                int base = lower(*e.operands[0]), exponent = lower(*e.operands[1]);
                // The type check allows a tensor only as x ^ 2.
                if (!plan_.nodes[static_cast<std::size_t>(base)].scalar) return binary(NodeKind::Mul, base, base);
                return binary(NodeKind::Pow, base, exponent);
            }
            case ExprKind::Chain: {
                int acc = lower(*e.operands[0]);
                for (std::size_t i = 1; i < e.operands.size(); ++i) {
                    const std::string& op = e.ops[i - 1].symbol;
                    const bool compare = opt_types::is_comparison(op);
                    NodeKind k = compare ? comparison(op) : op == "+" ? NodeKind::Add : op == "-" ? NodeKind::Sub
                               : op == "*" ? NodeKind::Mul : NodeKind::Div;
                    MODC_ASSERT(compare || op == "+" || op == "-" || op == "*" || op == "/", "the type check let '" + op + "' through");
                    acc = node(k, 0, -1, acc, lower(*e.operands[i]));
                }
                return acc;
            }
            case ExprKind::Tuple:
            case ExprKind::Named: break;
        }
        MODC_ASSERT(false, "the type check let a tuple or 'as' through");
        return -1;
    }

    // A parameter's default: numbers and + - * / ^ over them.
    std::optional<double> constant(const Expr& e) {
        std::optional<double> out;
        switch (e.kind) {
            case ExprKind::Number: return number(e);
            case ExprKind::Negate:
                if (auto v = constant(*e.operands[0])) out = -*v;
                break;
            case ExprKind::Power: {
                auto a = constant(*e.operands[0]), b = constant(*e.operands[1]);
                if (a && b) out = std::pow(*a, *b);
                break;
            }
            case ExprKind::Chain: {
                out = constant(*e.operands[0]);
                for (std::size_t i = 1; out && i < e.operands.size(); ++i) {
                    auto v = constant(*e.operands[i]);
                    if (!v) return std::nullopt;
                    const std::string& op = e.ops[i - 1].symbol;
                    if (op == "+") *out += *v;
                    else if (op == "-") *out -= *v;
                    else if (op == "*") *out *= *v;
                    else if (op == "/") *out /= *v;
                    else out.reset();
                }
                break;
            }
            default: break;
        }
        if (!ok_) return std::nullopt;
        if (!out || !std::isfinite(*out)) {
            diags_.error(e.loc, std::string("the default of an optimizer parameter must be a finite number") +
                                    (out ? "" : " (numbers and + - * / ^ only)"));
            ok_ = false;
            return std::nullopt;
        }
        return out;
    }
};

}  // namespace

std::optional<step::StepPlan> lower_step(const ast::Optimizer& optimizer, Diagnostics& diags) {
    return StepLowering(optimizer, diags).run();
}

}  // namespace modc
