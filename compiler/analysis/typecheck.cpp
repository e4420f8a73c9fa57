#include "compiler/analysis/typecheck.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

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

// Well-typed steps that are almost surely mistakes, as warnings: gradient ascent, weights
// overwritten or never reached by the gradient, state that nothing reads. Runs only on
// optimizers without type errors, so every name is W, grad, a parameter or a state variable,
// the one function is dualize, and a product has at most one factor that is not a number.
class Linter {
public:
    Linter(const ast::Optimizer& o, Diagnostics& diags) : opt_(o), diags_(diags) {}

    void run(bool updates_weights) {
        bool reaches_weights = false;
        // The first pass leaves in state_ what the state holds at the end of a step, which is
        // what it holds at the start of the next: the second pass reports.
        for (int pass = 0; pass < 2; ++pass) {
            from_weights_.clear();
            for (const auto& s : opt_.statements) {
                bool is_weights = s.target == kWeights;
                bool reads_self = s.assign.symbol != "=";  // `m += x` is `m = m + x`
                Terms terms = reads_self && !is_weights ? state_[s.target] : Terms{};
                collect(*s.value, s.assign.symbol == "-=" ? -1 : 1, terms);
                bool reads_w = reads_weights(*s.value) || (reads_self && (is_weights || from_weights_.count(s.target)));
                if (is_weights) {
                    if (pass == 1) check_update(s, terms, reads_w);
                    reaches_weights |= !terms.empty();
                    continue;
                }
                state_[s.target] = terms;
                if (reads_w) from_weights_.insert(s.target);
                else from_weights_.erase(s.target);
            }
        }
        // "never updates W" already covers an optimizer without any update of W.
        if (updates_weights && !reaches_weights)
            diags_.warning(opt_.name_loc, "optimizer '" + opt_.name + "' never applies dualize(...) to " + kWeights +
                                              ": the gradient never reaches the weights");
        check_state_read();
    }

private:
    // A dualize(...) call in a value and the sign it enters with: +1, -1, or 0 where some
    // factor's sign is unknown (a parameter without default, a state number, a power).
    struct Term {
        const Expr* call;
        int sign;
    };
    using Terms = std::map<std::uint32_t, Term>;  // by the call's offset: in source order

    const ast::Optimizer& opt_;
    Diagnostics& diags_;
    std::map<std::string, Terms> state_;  // the dualize(...) terms each state variable holds
    std::set<std::string> from_weights_;  // state assigned from W earlier in this step

    static void add(Terms& terms, const Expr* call, int sign) {
        auto [it, added] = terms.try_emplace(call->loc.begin, Term{call, sign});
        if (!added && it->second.sign != sign) it->second.sign = 0;  // reached with both signs: unknown
    }

    // Adds the dualize(...) terms of e, times sign, to out.
    void collect(const Expr& e, int sign, Terms& out) {
        switch (e.kind) {
            case ExprKind::Call: add(out, &e, sign); return;
            case ExprKind::Name:
                if (auto it = state_.find(e.text); it != state_.end())
                    for (const auto& [_, t] : it->second) add(out, t.call, sign * t.sign);
                return;
            case ExprKind::Negate: collect(*e.operands[0], -sign, out); return;
            case ExprKind::Chain:
                if (e.ops[0].symbol == "+" || e.ops[0].symbol == "-") {
                    for (std::size_t i = 0; i < e.operands.size(); ++i)
                        collect(*e.operands[i], i > 0 && e.ops[i - 1].symbol == "-" ? -sign : sign, out);
                } else {
                    // `*` and `/`: the numbers scale the one value that holds terms by their signs.
                    Terms inner;
                    for (const auto& operand : e.operands) {
                        Terms t;
                        collect(*operand, 1, t);
                        if (t.empty()) sign *= sign_of(*operand);
                        else inner = std::move(t);
                    }
                    for (const auto& [_, t] : inner) add(out, t.call, sign * t.sign);
                }
                return;
            default: return;  // numbers and powers of them hold no dualize(...)
        }
    }

    int sign_of(const Expr& e) const {
        auto v = constant(e, false);
        return !v || *v == 0 ? 0 : *v > 0 ? 1 : -1;
    }

    // The value of a constant number: literals, and parameters through their defaults (which
    // are read without names, so that defaults naming each other cannot loop).
    std::optional<double> constant(const Expr& e, bool in_default) const {
        switch (e.kind) {
            case ExprKind::Number: return std::strtod(e.text.c_str(), nullptr);
            case ExprKind::Name:
                if (in_default) return std::nullopt;
                for (const auto& p : opt_.params)
                    if (p.name == e.text && p.default_value) return constant(*p.default_value, true);
                return std::nullopt;
            case ExprKind::Negate: {
                auto v = constant(*e.operands[0], in_default);
                return v ? std::optional<double>(-*v) : std::nullopt;
            }
            case ExprKind::Chain: {
                auto acc = constant(*e.operands[0], in_default);
                for (std::size_t i = 1; i < e.operands.size() && acc; ++i) {
                    auto v = constant(*e.operands[i], in_default);
                    const std::string& op = e.ops[i - 1].symbol;
                    if (!v || (op == "/" && *v == 0)) return std::nullopt;
                    acc = op == "+" ? *acc + *v : op == "-" ? *acc - *v : op == "*" ? *acc * *v : *acc / *v;
                }
                return acc;
            }
            default: return std::nullopt;  // powers: their sign is not worked out
        }
    }

    bool reads_weights(const Expr& e) const {
        if (e.kind == ExprKind::Name) return e.text == kWeights || from_weights_.count(e.text);
        for (const auto& operand : e.operands)
            if (reads_weights(*operand)) return true;
        for (const auto& arg : e.args)
            if (reads_weights(*arg.value)) return true;
        return false;
    }

    void check_update(const ast::Statement& s, const Terms& terms, bool reads_w) {
        const std::string& op = s.assign.symbol;
        if (op == "=" && !reads_w) {
            // Nothing is added to the weights, so no gradient-ascent warning on top.
            auto& d = diags_.warning(s.value->loc, std::string(kWeights) + " = ... overwrites the weights with a value "
                                                   "that does not depend on them; update them with W -= ... or "
                                                   "W = W - ...");
            Diagnostics::note(d, s.assign.loc, "the weights are overwritten here");
            return;
        }
        for (const auto& [_, t] : terms) {
            if (t.sign <= 0) continue;
            auto& d = diags_.warning(t.call->loc, std::string(kWeights) + " " + op + " ... adds dualize(...) to the "
                                                  "weights: this climbs the gradient (gradient ascent); descend with " +
                                                  (op == "=" ? "W = W - lr * dualize(...)" : "W -= lr * dualize(...)"));
            Diagnostics::note(d, s.assign.loc, "the weights are updated here");
        }
    }

    static void names_read(const Expr& e, std::set<std::string>& out) {
        if (e.kind == ExprKind::Name) out.insert(e.text);
        for (const auto& operand : e.operands) names_read(*operand, out);
        for (const auto& arg : e.args) names_read(*arg.value, out);
    }

    // A state variable read only by its own assignments (`m = beta * m`) has no effect.
    void check_state_read() {
        std::set<std::string> read;
        for (const auto& s : opt_.statements) {
            std::set<std::string> names;
            names_read(*s.value, names);
            names.erase(s.target);
            read.insert(names.begin(), names.end());
        }
        std::set<std::string> reported;
        for (const auto& s : opt_.statements)
            if (s.target != kWeights && !read.count(s.target) && reported.insert(s.target).second)
                diags_.warning(s.target_loc, "state '" + s.target + "' is assigned but never read");
    }
};

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
        if (ok_) Linter(opt_, diags_).run(updates_weights);
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
