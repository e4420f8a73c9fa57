#include "compiler/analysis/typecheck.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "compiler/analysis/optimizer_types.hpp"
#include "compiler/analysis/rules.hpp"
#include "support/suggest.hpp"

namespace modc {

namespace {

using ast::Expr;
using ast::ExprKind;
using namespace opt_types;

// Well-typed steps that are almost surely mistakes, as warnings: gradient ascent, weights
// overwritten or never reached by the gradient, state that nothing reads. Runs only on
// optimizers without type errors, with the type of every node (`types`).
//
// Ascent is tracked through the maps the block applies to dual values ("map terms"): each
// dualize(...) call, sign(...) of a dual value, and a product or quotient that divides a dual
// value by a magnitude (m / (sqrt(v) + eps)). A term enters an update with the sign of the
// numbers that scale it (+1, -1, or 0 where one is unknown: a parameter without default, the
// step count, a power, a mask).
class Linter {
public:
    Linter(const ast::Optimizer& o, const std::map<const Expr*, Type>& types, Diagnostics& diags)
        : opt_(o), types_(types), diags_(diags) {}

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
            diags_.warning(opt_.name_loc, "optimizer '" + opt_.name + "' never applies a duality map (dualize(...), "
                                          "sign(...) of a gradient, or a gradient over its magnitude) to " + kWeights +
                                          ": the gradient never reaches the weights");
        check_state_read();
    }

private:
    struct Term {
        const Expr* map;
        int sign;
    };
    using Terms = std::map<std::uint32_t, Term>;  // by the map's offset: in source order

    const ast::Optimizer& opt_;
    const std::map<const Expr*, Type>& types_;
    Diagnostics& diags_;
    std::map<std::string, Terms> state_;  // the map terms each state variable holds
    std::set<std::string> from_weights_;  // state assigned from W earlier in this step

    Type type_of(const Expr& e) const {
        auto it = types_.find(&e);
        return it == types_.end() ? Type{} : it->second;
    }

    static void add(Terms& terms, const Expr* map, int sign) {
        auto [it, added] = terms.try_emplace(map->loc.begin, Term{map, sign});
        if (!added && it->second.sign != sign) it->second.sign = 0;  // reached with both signs: unknown
    }
    static void add_all(Terms& out, const Terms& in, int sign) {
        for (const auto& [_, t] : in) add(out, t.map, sign * t.sign);
    }

    // A product or quotient that maps a dual value into weight space (m / (sqrt(v) + eps)).
    bool maps_dual(const Expr& e) const {
        if (e.kind != ExprKind::Chain || (e.ops[0].symbol != "*" && e.ops[0].symbol != "/")) return false;
        if (!type_of(e).is_dir(Space::Primal)) return false;
        return std::any_of(e.operands.begin(), e.operands.end(),
                           [&](const ast::ExprPtr& o) { return type_of(*o).is_dir(Space::Dual); });
    }

    // Adds the map terms of e, times sign, to out.
    void collect(const Expr& e, int sign, Terms& out) {
        switch (e.kind) {
            case ExprKind::Call:
                if (e.text == "dualize" || (e.text == "sign" && e.args.size() == 1 && type_of(*e.args[0].value).is_dir(Space::Dual))) {
                    add(out, &e, sign);
                } else {
                    // Other functions: whatever terms their arguments hold, of unknown sign.
                    for (const auto& a : e.args) collect(*a.value, 0, out);
                }
                return;
            case ExprKind::Name:
                if (auto it = state_.find(e.text); it != state_.end()) add_all(out, it->second, sign);
                return;
            case ExprKind::Negate: collect(*e.operands[0], -sign, out); return;
            case ExprKind::Chain: {
                const std::string& op = e.ops[0].symbol;
                if (op == "+" || op == "-") {
                    for (std::size_t i = 0; i < e.operands.size(); ++i)
                        collect(*e.operands[i], i > 0 && e.ops[i - 1].symbol == "-" ? -sign : sign, out);
                    return;
                }
                if (op != "*" && op != "/") return;  // comparisons: masks, no direction
                // The numbers and magnitudes scale the values that hold terms by their signs.
                int scale = sign;
                Terms inner;
                for (const auto& operand : e.operands) {
                    Terms t;
                    collect(*operand, 1, t);
                    if (!t.empty()) {
                        add_all(inner, t, inner.empty() ? 1 : 0);  // two factors with terms: unknown sign
                        continue;
                    }
                    Type ty = type_of(*operand);
                    if (ty.kind == Kind::Magnitude) continue;  // >= 0
                    if (ty.kind == Kind::Direction) {
                        if (!maps_dual(e)) scale = 0;  // a primal factor of unknown sign
                        continue;
                    }
                    scale *= sign_of(*operand);
                }
                if (maps_dual(e) && inner.empty()) {
                    add(out, &e, scale * dual_sign(e));
                    return;
                }
                add_all(out, inner, scale);
                return;
            }
            default: return;  // numbers and powers of them hold no map terms
        }
    }

    // The sign of the dual factor of a map-like product: +1 when it is the gradient itself.
    int dual_sign(const Expr& e) const {
        for (const auto& o : e.operands)
            if (type_of(*o).is_dir(Space::Dual)) return o->kind == ExprKind::Name && o->text == kGradient ? 1 : 0;
        return 0;
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
                    if (op != "+" && op != "-" && op != "*" && op != "/") return std::nullopt;
                    acc = op == "+" ? *acc + *v : op == "-" ? *acc - *v : op == "*" ? *acc * *v : *acc / *v;
                }
                return acc;
            }
            default: return std::nullopt;  // powers and calls: their sign is not worked out
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
            const bool call = t.map->kind == ExprKind::Call;
            const std::string what = call ? t.map->text + "(...)" : "a gradient over its magnitude";
            auto& d = diags_.warning(t.map->loc, std::string(kWeights) + " " + op + " ... adds " + what + " to the "
                                                 "weights: this climbs the gradient (gradient ascent); descend with " +
                                                 (op == "=" ? "W = W - lr * " : "W -= lr * ") +
                                                 (call ? t.map->text + "(...)" : "..."));
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
            if (p.name == kWeights || p.name == kGradient || weight_number(p.name)) {
                diags_.error(p.loc, "'" + p.name + "' is predefined in an optimizer and cannot be a parameter");
                ok_ = false;
                continue;
            }
            vars_[p.name] = Type::number();
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
        if (ok_) Linter(opt_, types_, diags_).run(updates_weights);
        return ok_;
    }

private:
    const ast::Optimizer& opt_;
    Diagnostics& diags_;
    std::map<std::string, Type> vars_;
    std::vector<std::string> params_;
    std::map<const Expr*, Type> types_;  // of the reporting pass, for the linter
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
        if (s.target == kGradient || is_param(s.target) || weight_number(s.target)) {
            error(s.target_loc, "'" + s.target + "' is " +
                                    (s.target == kGradient ? "the gradient"
                                     : is_param(s.target)  ? "a parameter"
                                                           : "a number modc gives every step") +
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
        if (!value.known()) return;
        if (var.known() && var != value) {
            // The first type a variable gets is its type; a later assignment that disagrees is the error.
            error(s.loc, "'" + s.target + "' is assigned " + name_of(value) + " here, but holds " + name_of(var) +
                             " elsewhere");
            return;
        }
        var = value;
    }

    void check_weight_update(const ast::Statement& s, Type value) {
        if (!value.known() || value.is_dir(Space::Primal)) return;
        const std::string& op = s.assign.symbol;
        if (value.is_dir(Space::Dual)) {
            std::string what = op == "-=" ? "subtracts a dual value (a gradient) from the primal weights"
                               : op == "+=" ? "adds a dual value (a gradient) to the primal weights"
                                            : "makes the primal weights a dual value (a gradient)";
            std::string fix = op == "=" ? std::string(kWeights) + " = " + kWeights + " - lr * dualize(" + kGradient + ")"
                                        : std::string(kWeights) + " " + op + " lr * dualize(" + kGradient + ")";
            auto* d = error(s.value->loc, "ill-typed update: " + std::string(kWeights) + " " + op + " ... " + what +
                                              "; dualize it first, e.g. " + fix);
            if (d) Diagnostics::note(*d, s.assign.loc, "the weights are updated here");
        } else if (value.kind == Kind::Magnitude) {
            auto* d = error(s.value->loc, "ill-typed update: " + std::string(kWeights) + " " + op + " needs a direction "
                                          "in weight space, but this is " + name_of(value) + ", which has no direction; "
                                          "a magnitude only scales a step, as in m / (sqrt(v) + eps)");
            if (d) Diagnostics::note(*d, s.assign.loc, "the weights are updated here");
        } else {
            error(s.value->loc, "ill-typed update: " + std::string(kWeights) + " " + op +
                                    " needs a value in weight space, but this is " + name_of(value));
        }
    }

    Type combine(Type a, Type b, Loc op_loc, const std::string& op) {
        Rule r = combine_types(a, b, op);
        if (!r.error.empty()) {
            error(op_loc, r.error);
            return Type::error();
        }
        return r.type;
    }

    Type record(const Expr& e, Type t) {
        if (reporting_) types_[&e] = t;
        return t;
    }

    Type type(const Expr& e) { return record(e, type_of(e)); }

    Type type_of(const Expr& e) {
        switch (e.kind) {
            case ExprKind::Number: return Type::number();
            case ExprKind::Name: {
                if (e.text == kWeights) return Type::dir(Space::Primal);
                if (e.text == kGradient) return Type::dir(Space::Dual);
                if (weight_number(e.text)) return Type::number();
                if (auto it = vars_.find(e.text); it != vars_.end()) return it->second;
                bool assigned_later = false;
                for (const auto& s : opt_.statements) assigned_later |= s.target == e.text;
                if (assigned_later) return Type{};  // state from the previous step
                std::vector<std::string> names{kWeights, kGradient};
                for (const auto& [n, _] : vars_) names.push_back(n);
                for (const char* n : kWeightNumbers) names.push_back(n);
                std::string hint = closest_match(e.text, names);
                error(e.loc, "unknown name '" + e.text + "' in optimizer '" + opt_.name + "'" +
                                 (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
                return Type::error();
            }
            case ExprKind::Call: return call(e);
            case ExprKind::Negate: return type(*e.operands[0]);
            case ExprKind::Chain: {
                const bool compare = is_comparison(e.ops[0].symbol);
                if (compare && e.operands.size() > 2) {
                    error(e.ops[1].loc, "comparisons do not chain; combine masks with '*' (a < b) * (b < c)");
                    return Type::error();
                }
                Type acc = type(*e.operands[0]);
                for (std::size_t i = 1; i < e.operands.size(); ++i)
                    acc = combine(acc, type(*e.operands[i]), e.ops[i - 1].loc, e.ops[i - 1].symbol);
                return acc;
            }
            case ExprKind::Power: {
                Type base = type(*e.operands[0]);
                Type exponent = type(*e.operands[1]);
                if (base.kind == Kind::Error || exponent.kind == Kind::Error) return Type::error();
                if (base.kind == Kind::Number && exponent.kind == Kind::Number) return Type::number();
                if (base.is_tensor() && exponent.kind == Kind::Number && is_two(*e.operands[1]))
                    return combine(base, base, e.ops[0].loc, "*");
                if (!base.known() || !exponent.known()) return Type{};
                error(e.ops[0].loc, "'^' applies to numbers, and to a tensor only as x ^ 2; write the rest with sqrt, '*' and '/'");
                return Type::error();
            }
            case ExprKind::Tuple:
            case ExprKind::Named:
                error(e.loc, "tuples and 'as' names are not allowed in an optimizer");
                return Type::error();
        }
        return Type::error();
    }

    static bool is_two(const Expr& e) { return e.kind == ExprKind::Number && std::strtod(e.text.c_str(), nullptr) == 2.0; }

    // dualize(...) and the statistics need their argument over the whole weight; it is computed
    // in an earlier pass, so it cannot itself hold one of them.
    static const Expr* deferred_inside(const Expr& e) {
        if (e.kind == ExprKind::Call) {
            const Function* f = find_function(e.text);
            if (f && f->deferred) return &e;
        }
        for (const auto& o : e.operands)
            if (const Expr* d = deferred_inside(*o)) return d;
        for (const auto& a : e.args)
            if (const Expr* d = deferred_inside(*a.value)) return d;
        return nullptr;
    }

    Type call(const Expr& e) {
        const Function* f = find_function(e.text);
        if (!f) {
            std::vector<std::string> names;
            for (const auto& g : kFunctions) names.push_back(g.name);
            std::string hint = closest_match(e.text, names);
            error(e.name_loc, "unknown function '" + e.text + "' in an optimizer" +
                                  (hint.empty() ? "; the functions are " + function_list() : "; did you mean '" + hint + "'?"));
            return Type::error();
        }
        for (const auto& a : e.args)
            if (a.keyword) {
                error(a.keyword_loc, e.text + " takes its arguments by position, not by name");
                return Type::error();
            }
        if (e.args.size() != f->arity) {
            error(e.loc, e.text + " takes " + std::to_string(f->arity) + " argument" + (f->arity == 1 ? "" : "s") +
                             ": " + f->signature);
            return Type::error();
        }
        std::vector<Type> args;
        bool any_error = false;
        for (const auto& a : e.args) {
            args.push_back(type(*a.value));
            any_error |= args.back().kind == Kind::Error;
        }
        if (any_error) return Type::error();
        if (f->deferred)
            for (const auto& a : e.args)
                if (const Expr* inner = deferred_inside(*a.value)) {
                    error(inner->loc, inner->text + "(...) inside " + e.text + "(...): " + e.text +
                                          " needs its argument over the whole weight first; assign " + inner->text +
                                          "(...) to a name in a statement before");
                    return Type::error();
                }
        Rule r = f->rule(args);
        if (!r.error.empty()) {
            const std::size_t at = std::min(r.argument, e.args.size() - 1);
            error(r.argument < e.args.size() ? e.args[at].value->loc : e.loc, r.error);
            return Type::error();
        }
        return r.type;
    }
};

}  // namespace

bool typecheck_optimizers(const ast::File& file, Diagnostics& diags) {
    bool ok = true;
    for (const auto& o : file.optimizers) {
        if (!o.rules.empty() && !o.statements.empty()) {
            diags.error(o.statements.front().loc, "a statement outside a rule: in an optimizer with rules (for ... { }), "
                                                  "every statement belongs to one");
            ok = false;
        }
        // Each rule is a block of its own, checked as one (rules.hpp).
        for (const auto& block : rule_blocks(o)) ok &= Checker(block, diags).run();
    }
    return ok;
}

}  // namespace modc
