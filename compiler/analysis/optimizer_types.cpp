#include "compiler/analysis/optimizer_types.hpp"

#include <algorithm>

namespace modc::opt_types {

namespace {

std::string space_values(Space s) { return s == Space::Primal ? "primal values" : "dual values (gradients)"; }

Rule ok(Type t) { return {t, "", static_cast<std::size_t>(-1)}; }
Rule refuse(std::string message, std::size_t argument = static_cast<std::size_t>(-1)) {
    return {Type::error(), std::move(message), argument};
}

bool any_error(const std::vector<Type>& args) {
    return std::any_of(args.begin(), args.end(), [](Type t) { return t.kind == Kind::Error; });
}
bool any_unknown(const std::vector<Type>& args) {
    return std::any_of(args.begin(), args.end(), [](Type t) { return t.kind == Kind::Unknown; });
}

// Two values of one kind where either may be a number: max, min, where's branches.
Rule same_kind(Type a, Type b, const std::string& what) {
    if (a.kind == Kind::Unknown) return ok(b);
    if (b.kind == Kind::Unknown || a == b) return ok(a);
    if (a.kind == Kind::Number) return ok(b);
    if (b.kind == Kind::Number) return ok(a);
    if (a.scalar_like() && b.scalar_like()) return ok(Type::field());
    return refuse(what + " of " + name_of(a) + " and " + name_of(b) + ": they are values of different kinds", 1);
}

Rule dualize_rule(const std::vector<Type>& a) {
    Type x = a[0];
    if (x.is_dir(Space::Dual) || x.kind == Kind::Unknown) return ok(Type::dir(Space::Primal));
    if (x.is_dir(Space::Primal))
        return refuse("dualize maps a dual value (a gradient) to the weight space, but this is already primal", 0);
    if (x.kind == Kind::Number) return refuse("dualize needs a gradient, but this is a number", 0);
    return refuse("dualize needs a gradient, but this is " + name_of(x), 0);
}

Rule sqrt_rule(const std::vector<Type>& a) {
    Type x = a[0];
    if (x.kind == Kind::Magnitude) {
        if (x.degree % 2) return refuse("sqrt of " + name_of(x) + ": take sqrt of a square or of a magnitude", 0);
        return ok(Type::mag(x.space, x.degree / 2));
    }
    if (x.kind == Kind::Direction)
        return refuse("sqrt of " + name_of(x) + ": a direction has no square root; take it of a magnitude "
                      "(abs(x), x * x, or an average of squares)", 0);
    return ok(x);
}

Rule abs_rule(const std::vector<Type>& a) {
    return ok(a[0].kind == Kind::Direction ? Type::mag(a[0].space, 2) : a[0]);
}

// sign of a dual value is the duality map of the l-infinity norm (signSGD, Lion): primal. Of
// anything else it is a number per entry.
Rule sign_rule(const std::vector<Type>& a) {
    Type x = a[0];
    if (x.is_dir(Space::Dual)) return ok(Type::dir(Space::Primal));
    if (x.kind == Kind::Direction || x.kind == Kind::Magnitude) return ok(Type::field());
    return ok(x);
}

Rule max_rule(const std::vector<Type>& a) { return same_kind(a[0], a[1], "max"); }
Rule min_rule(const std::vector<Type>& a) { return same_kind(a[0], a[1], "min"); }

Rule clamp_rule(const std::vector<Type>& a) {
    for (std::size_t i = 1; i < 3; ++i)
        if (a[i].known() && a[i].kind != Kind::Number)
            return refuse("clamp's bounds are numbers, but this is " + name_of(a[i]), i);
    return ok(a[0]);
}

Rule where_rule(const std::vector<Type>& a) {
    if (a[0].known() && !a[0].scalar_like())
        return refuse("where's condition is a mask (a comparison such as u * W > 0), but this is " + name_of(a[0]), 0);
    Rule r = same_kind(a[1], a[2], "where");
    if (!r.error.empty()) r.argument = 2;
    return r;
}

Rule keep_rule(const std::vector<Type>& a) { return ok(a[0]); }

// rms and norm: a magnitude of what they measure.
Rule norm_rule(const std::vector<Type>& a) {
    return ok(a[0].kind == Kind::Direction ? Type::mag(a[0].space, 2) : a[0]);
}

Rule dot_rule(const std::vector<Type>& a) {
    Rule r = combine_types(a[0], a[1], "*");
    if (!r.error.empty()) r = refuse("dot of " + name_of(a[0]) + " and " + name_of(a[1]) + ": " + r.error, 1);
    return r;
}

// Wraps a rule: an error in gives an error out, and an unknown argument (state not yet
// inferred) an unknown result.
template <Rule (*R)(const std::vector<Type>&)>
Rule checked(const std::vector<Type>& a) {
    if (any_error(a)) return ok(Type::error());
    if (any_unknown(a)) return ok(Type{});
    return R(a);
}

// The same for rules that type unknown arguments themselves (dualize of state is primal; max,
// min, clamp and where take their type from the arguments that are known).
template <Rule (*R)(const std::vector<Type>&)>
Rule checked_with_unknowns(const std::vector<Type>& a) {
    if (any_error(a)) return ok(Type::error());
    return R(a);
}

}  // namespace

std::string name_of(Type t) {
    switch (t.kind) {
        case Kind::Number: return "a number";
        case Kind::Field: return "a number per entry (a mask or a ratio)";
        case Kind::Direction: return t.space == Space::Primal ? "a primal value (in weight space)" : "a dual value (a gradient)";
        case Kind::Magnitude:
            if (t.degree == 2) return "the magnitude of " + space_values(t.space);
            if (t.degree == 4) return "a second moment of " + space_values(t.space);
            return "a power of the magnitude of " + space_values(t.space);
        default: return "an unknown value";
    }
}

bool is_comparison(const std::string& op) {
    return op == "<" || op == ">" || op == "<=" || op == ">=" || op == "==" || op == "!=";
}

Rule combine_types(Type a, Type b, const std::string& op) {
    if (a.kind == Kind::Error || b.kind == Kind::Error) return ok(Type::error());
    if (is_comparison(op)) {
        if (!a.known() || !b.known() || a == b || a.scalar_like() || b.scalar_like()) return ok(Type::field());
        if (a.kind == Kind::Direction && b.kind == Kind::Direction)
            return refuse("cannot compare " + name_of(a) + " with " + name_of(b) + ": they live in different spaces");
        return refuse("cannot compare " + name_of(a) + " with " + name_of(b));
    }
    if (a.kind == Kind::Unknown || b.kind == Kind::Unknown) {
        // A state variable not yet inferred: keep what the rest of the expression tells.
        Type other = a.kind == Kind::Unknown ? b : a;
        if (op == "*") return ok(other.kind == Kind::Direction || other.kind == Kind::Magnitude ? other : Type{});
        if (op == "/") return ok(a);
        return ok(other);
    }
    if (op == "+" || op == "-") {
        const bool add = op == "+";
        if (a == b) return ok(a);
        if (a.scalar_like() && b.scalar_like()) return ok(Type::field());
        // An epsilon added to a magnitude: sqrt(v) + eps.
        if (a.kind == Kind::Magnitude && b.kind == Kind::Number) return ok(a);
        if (b.kind == Kind::Magnitude && a.kind == Kind::Number) return ok(b);
        if (a.kind == Kind::Direction && b.kind == Kind::Direction)
            return refuse(std::string("cannot ") + (add ? "add" : "subtract") +
                          " a primal value and a dual value: they live in different spaces; dualize the gradient "
                          "first with dualize(...)");
        std::string message = std::string("cannot ") + (add ? "add " : "subtract ") + name_of(b) + (add ? " to " : " from ") +
                              name_of(a);
        if ((a.kind == Kind::Magnitude) != (b.kind == Kind::Magnitude) && (a.kind == Kind::Direction || b.kind == Kind::Direction))
            message += ": a magnitude has no direction; divide by it instead, as in m / (sqrt(v) + eps)";
        return refuse(message);
    }
    if (op == "*") {
        if (a.kind == Kind::Number) return ok(b);
        if (b.kind == Kind::Number) return ok(a);
        if (a.kind == Kind::Field) return ok(b);
        if (b.kind == Kind::Field) return ok(a);
        if (a.kind == Kind::Direction && b.kind == Kind::Direction)
            return ok(a.space == b.space ? Type::mag(a.space, 4) : Type::field());  // x * x; a primal-dual pairing per entry
        if (a.kind == Kind::Magnitude && b.kind == Kind::Magnitude && a.space == b.space)
            return ok(Type::mag(a.space, a.degree + b.degree));
        return refuse("cannot multiply " + name_of(a) + " by " + name_of(b) +
                      "; scale by numbers, masks and ratios, or square a value as x * x");
    }
    if (op == "/") {
        if (b.scalar_like()) return ok(a.kind == Kind::Number && b.kind == Kind::Field ? b : a);
        if (a.kind == Kind::Direction && b.kind == Kind::Magnitude && a.space == b.space) {
            // A direction over its own magnitude, per entry (Adam, NorMuon): sign(x) times a ratio
            // of two magnitudes, so for a dual value the l-infinity duality map, damped per entry.
            if (b.degree == 2) return ok(Type::dir(Space::Primal));
            return refuse("cannot divide " + name_of(a) + " by " + name_of(b) +
                          ": divide a direction by a magnitude of it (sqrt of a second moment, abs, rms or norm)");
        }
        if (a.kind == Kind::Magnitude && b.kind == Kind::Magnitude && a.space == b.space && a.degree >= b.degree)
            return ok(a.degree == b.degree ? Type::field() : Type::mag(a.space, a.degree - b.degree));
        if (a.kind == Kind::Direction && b.kind == Kind::Direction && a.space == b.space) return ok(Type::field());
        return refuse("cannot divide " + name_of(a) + " by " + name_of(b));
    }
    return refuse("'" + op + "' is not allowed in an optimizer");
}

const std::vector<Function> kFunctions = {
    {"dualize", Fn::Dualize, 1, true, "dualize(g), the network's duality map of a gradient", checked_with_unknowns<dualize_rule>},
    {"sqrt", Fn::Sqrt, 1, false, "sqrt(x)", checked<sqrt_rule>},
    {"abs", Fn::Abs, 1, false, "abs(x)", checked<abs_rule>},
    {"sign", Fn::Sign, 1, false, "sign(x)", checked<sign_rule>},
    {"max", Fn::Max, 2, false, "max(a, b), per entry", checked_with_unknowns<max_rule>},
    {"min", Fn::Min, 2, false, "min(a, b), per entry", checked_with_unknowns<min_rule>},
    {"clamp", Fn::Clamp, 3, false, "clamp(x, low, high)", checked_with_unknowns<clamp_rule>},
    {"where", Fn::Where, 3, false, "where(mask, a, b): a where the mask is not 0, else b", checked_with_unknowns<where_rule>},
    {"sum", Fn::Sum, 1, true, "sum(x), over the whole weight", checked<keep_rule>},
    {"mean", Fn::Mean, 1, true, "mean(x), over the whole weight", checked<keep_rule>},
    {"rms", Fn::Rms, 1, true, "rms(x) = sqrt(mean(x * x))", checked<norm_rule>},
    {"norm", Fn::Norm, 1, true, "norm(x), the Frobenius norm sqrt(sum(x * x))", checked<norm_rule>},
    {"dot", Fn::Dot, 2, true, "dot(a, b) = sum(a * b)", checked<dot_rule>},
    {"row_mean", Fn::RowMean, 1, true, "row_mean(x), the mean of each row (the weight as fan_out x fan_in)", checked<keep_rule>},
    {"col_mean", Fn::ColMean, 1, true, "col_mean(x), the mean of each column (the weight as fan_out x fan_in)", checked<keep_rule>},
};

const Function* find_function(const std::string& name) {
    for (const auto& f : kFunctions)
        if (name == f.name) return &f;
    return nullptr;
}

std::string function_list() {
    std::string out;
    for (const auto& f : kFunctions) out += (out.empty() ? "" : ", ") + std::string(f.name);
    return out;
}

bool weight_number(const std::string& name) {
    return std::any_of(std::begin(kWeightNumbers), std::end(kWeightNumbers), [&](const char* n) { return name == n; });
}

}  // namespace modc::opt_types
