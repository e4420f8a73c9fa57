#include "compiler/analysis/typecheck.hpp"

#include <algorithm>
#include <map>

#include "support/suggest.hpp"

namespace modc {

namespace {

using ast::Expr;
using ast::ExprKind;

enum class Type { Unknown, Error, Scalar, Primal, Dual };

std::string name_of(Type t) {
    switch (t) {
        case Type::Scalar: return "a number";
        case Type::Primal: return "a primal value (in weight space)";
        case Type::Dual: return "a dual value (a gradient)";
        default: return "an unknown value";
    }
}

bool is_vector(Type t) { return t == Type::Primal || t == Type::Dual; }

// The names every optimizer sees: the weights it updates and their gradient.
const char* const kWeights = "W";
const char* const kGradient = "grad";

class Checker {
public:
    Checker(const ast::Optimizer& o, Diagnostics& diags) : opt_(o), diags_(diags) {}

    bool run() {
        for (const auto& p : opt_.params) {
            if (p.name == kWeights || p.name == kGradient) {
                diags_.error(p.loc, "'" + p.name + "' is predefined in an optimizer and cannot be a parameter");
                ok_ = false;
                continue;
            }
            vars_[p.name] = Type::Scalar;
            params_.push_back(p.name);
        }
        // State variables (`m = beta * m + grad`) may be read before they are assigned: they
        // hold the previous step's value. Infer their types to a fixed point, then report.
        for (int pass = 0; pass < 4; ++pass) {
            reporting_ = false;
            for (const auto& s : opt_.statements) assign(s);
        }
        reporting_ = true;
        bool updates_weights = false;
        for (const auto& s : opt_.statements) {
            assign(s);
            updates_weights |= s.target == kWeights;
        }
        if (!updates_weights) diags_.warning(opt_.name_loc, "optimizer '" + opt_.name + "' never updates " + kWeights);
        return ok_;
    }

private:
    const ast::Optimizer& opt_;
    Diagnostics& diags_;
    std::map<std::string, Type> vars_;
    std::vector<std::string> params_;
    bool reporting_ = false;
    bool ok_ = true;

    Diagnostic* error(Loc loc, const std::string& message) {
        if (!reporting_) return nullptr;
        ok_ = false;
        return &diags_.error(loc, message);
    }

    bool is_param(const std::string& n) const {
        return std::find(params_.begin(), params_.end(), n) != params_.end();
    }

    void assign(const ast::Statement& s) {
        Type value = type(*s.value);
        if (s.target == kGradient || is_param(s.target)) {
            error(s.target_loc, "'" + s.target + "' is " + (s.target == kGradient ? "the gradient" : "a parameter") +
                                    " and cannot be assigned");
            return;
        }
        if (s.target == kWeights) {
            check_weight_update(s, value);
            return;
        }
        Type& var = vars_[s.target];
        // `u += x` on state not yet inferred reads the previous step's u, as `u = u + x` does.
        if (s.assign.symbol != "=") value = combine(var, value, s.assign.loc, s.assign.symbol.substr(0, 1));
        if (value == Type::Unknown || value == Type::Error) return;
        if (var != Type::Unknown && var != value) {
            // The first type a variable gets is its type; a later assignment that disagrees is the error.
            error(s.loc, "'" + s.target + "' is assigned " + name_of(value) + " here, but holds " + name_of(var) +
                             " elsewhere");
            return;
        }
        var = value;
    }

    void check_weight_update(const ast::Statement& s, Type value) {
        if (value == Type::Error || value == Type::Unknown) return;
        std::string what = s.assign.symbol == "-=" ? "subtracts a dual value (a gradient) from the primal weights"
                           : s.assign.symbol == "+=" ? "adds a dual value (a gradient) to the primal weights"
                                                     : "makes the primal weights a dual value (a gradient)";
        std::string fix = s.assign.symbol == "=" ? std::string(kWeights) + " = " + kWeights + " - lr * dualize(" + kGradient + ")"
                                                 : std::string(kWeights) + " " + s.assign.symbol + " lr * dualize(" + kGradient + ")";
        if (value == Type::Dual) {
            auto* d = error(s.value->loc, "ill-typed update: " + std::string(kWeights) + " " + s.assign.symbol +
                                              " ... " + what + "; dualize it first, e.g. " + fix);
            if (d) Diagnostics::note(*d, s.assign.loc, "the weights are updated here");
        } else if (value == Type::Scalar) {
            error(s.value->loc, "ill-typed update: " + std::string(kWeights) + " " + s.assign.symbol +
                                    " needs a value in weight space, but this is a number");
        }
    }

    Type combine(Type a, Type b, Loc op_loc, const std::string& op) {
        if (a == Type::Error || b == Type::Error) return Type::Error;
        if (a == Type::Unknown || b == Type::Unknown) {
            // A state variable not yet inferred: keep what the rest of the expression tells.
            if (op == "*") {
                Type other = a == Type::Unknown ? b : a;
                return is_vector(other) ? other : Type::Unknown;
            }
            if (op == "/") return a;
            return a == Type::Unknown ? b : a;
        }
        if (op == "+" || op == "-") {
            if (a == b) return a;
            if (is_vector(a) && is_vector(b)) {
                error(op_loc, std::string("cannot ") + (op == "+" ? "add" : "subtract") +
                                  " a primal value and a dual value: they live in different spaces; dualize the "
                                  "gradient first with dualize(...)");
            } else {
                error(op_loc, std::string("cannot ") + (op == "+" ? "add " : "subtract ") + name_of(b) +
                                  (op == "+" ? " to " : " from ") + name_of(a));
            }
            return Type::Error;
        }
        if (op == "*") {
            if (a == Type::Scalar) return b;
            if (b == Type::Scalar) return a;
            error(op_loc, "cannot multiply " + name_of(a) + " by " + name_of(b) + "; scale by numbers only");
            return Type::Error;
        }
        if (op == "/") {
            if (b == Type::Scalar) return a;
            error(op_loc, "cannot divide by " + name_of(b));
            return Type::Error;
        }
        error(op_loc, "'" + op + "' is not allowed in an optimizer");
        return Type::Error;
    }

    Type type(const Expr& e) {
        switch (e.kind) {
            case ExprKind::Number: return Type::Scalar;
            case ExprKind::Name: {
                if (e.text == kWeights) return Type::Primal;
                if (e.text == kGradient) return Type::Dual;
                if (auto it = vars_.find(e.text); it != vars_.end()) return it->second;
                bool assigned_later = false;
                for (const auto& s : opt_.statements) assigned_later |= s.target == e.text;
                if (assigned_later) return Type::Unknown;  // state from the previous step
                std::vector<std::string> names{kWeights, kGradient};
                for (const auto& [n, _] : vars_) names.push_back(n);
                std::string hint = closest_match(e.text, names);
                error(e.loc, "unknown name '" + e.text + "' in optimizer '" + opt_.name + "'" +
                                 (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
                return Type::Error;
            }
            case ExprKind::Call: {
                if (e.text != "dualize") {
                    error(e.name_loc, "unknown function '" + e.text + "' in an optimizer; the one function is dualize(...)");
                    return Type::Error;
                }
                if (e.args.size() != 1 || e.args[0].keyword) {
                    error(e.loc, "dualize takes one argument, the gradient to dualize");
                    return Type::Error;
                }
                Type arg = type(*e.args[0].value);
                if (arg == Type::Dual || arg == Type::Unknown) return Type::Primal;
                if (arg == Type::Primal)
                    error(e.args[0].value->loc, "dualize maps a dual value (a gradient) to the weight space, but "
                                                "this is already primal");
                else if (arg == Type::Scalar)
                    error(e.args[0].value->loc, "dualize needs a gradient, but this is a number");
                return Type::Error;
            }
            case ExprKind::Negate: return type(*e.operands[0]);
            case ExprKind::Chain: {
                Type acc = type(*e.operands[0]);
                for (std::size_t i = 1; i < e.operands.size(); ++i)
                    acc = combine(acc, type(*e.operands[i]), e.ops[i - 1].loc, e.ops[i - 1].symbol);
                return acc;
            }
            case ExprKind::Power: {
                Type base = type(*e.operands[0]);
                Type exponent = type(*e.operands[1]);
                if (base == Type::Error || exponent == Type::Error) return Type::Error;
                if (is_vector(base) || is_vector(exponent)) {
                    error(e.ops[0].loc, "'^' applies to numbers only");
                    return Type::Error;
                }
                return Type::Scalar;
            }
            case ExprKind::Tuple:
            case ExprKind::Named:
                error(e.loc, "tuples and 'as' names are not allowed in an optimizer");
                return Type::Error;
        }
        return Type::Error;
    }
};

}  // namespace

bool typecheck_optimizers(const ast::File& file, Diagnostics& diags) {
    bool ok = true;
    for (const auto& o : file.optimizers) ok &= Checker(o, diags).run();
    return ok;
}

}  // namespace modc
