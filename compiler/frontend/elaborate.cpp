#include "compiler/frontend/elaborate.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "compiler/frontend/norms.hpp"
#include "support/suggest.hpp"

namespace modc {

namespace {

using ast::Expr;
using ast::ExprKind;
using ir::Node;
using ir::NodePtr;
using ir::Pattern;

struct Value {
    enum class Kind { Error, Number, Module } kind = Kind::Error;
    Rational number;
    NodePtr module;
    Loc loc;

    static Value error() { return {}; }
    static Value of(Rational n, Loc loc) { return {Kind::Number, std::move(n), nullptr, loc}; }
    static Value of(NodePtr m, Loc loc) { return {Kind::Module, 0, std::move(m), loc}; }
    bool is_error() const { return kind == Kind::Error; }
    bool is_number() const { return kind == Kind::Number; }
    bool is_module() const { return kind == Kind::Module; }
};

using Env = std::map<std::string, Value>;

// Thrown when a network grows past kMaxModules; reported once, at the network.
struct TooLarge {
    Loc loc;
};

// Thrown when elaboration spends more than kMaxElaborationSteps; reported once, at the network.
struct TooMuchWork {
    Loc loc;
};

const std::set<std::string> kBuiltins = {"tare"};

std::string what(const Value& v) { return v.is_number() ? "a number" : "a module"; }

class Elaborator {
public:
    explicit Elaborator(Diagnostics& diags) : diags_(diags) {}

    void declare(const ast::File& file);
    std::optional<ir::Network> network(const ast::Definition& def, const std::map<std::string, Rational>& overrides);

private:
    Diagnostics& diags_;
    std::map<std::string, const ast::Definition*> defs_;
    std::map<std::string, const ast::Primitive*> primitives_;
    std::vector<const ast::Definition*> call_stack_;
    std::vector<Loc> call_sites_;  // where each definition on call_stack_ (after the network) was called
    std::size_t modules_ = 0;
    // The work budget, for the whole file: every expression evaluated and every module built or
    // copied costs a step, whatever the result. Work that ends in an error counts too, so that a
    // subtree whose errors stop it from building modules (definitions past the call depth, or
    // numbers only) still runs out of budget instead of being walked 2^64 times.
    // Steps are roughly 0.1 us each: exact arithmetic costs one per two bits of its operands (a
    // product of two 4000-bit rationals takes about 200 us), a diagnostic one per byte.
    std::size_t steps_ = 0;
    bool budgeted_ = false;  // inside network(), where TooMuchWork is caught
    int fresh_ = 0;

    void spend(std::size_t steps, Loc loc) {
        steps_ += steps;
        if (steps_ > kMaxElaborationSteps) throw TooMuchWork{loc};
    }
    void spend_on_numbers(const Rational& a, const Rational& b, Loc loc) {
        spend(1 + (bit_size(a) + bit_size(b)) / 2, loc);
    }
    void spend_on_message(std::size_t bytes, Loc loc) {
        if (budgeted_) spend(bytes + 100, loc);  // declarations are checked once, outside the budget
    }

    // Diagnostics found while expanding definitions carry a note per call, innermost first, so
    // that an error in a definition's body names the call that led to it.
    // A duplicate (the same error reached again, e.g. through two uses of one def) is dropped by
    // Diagnostics; it gets no notes either, which keeps a walk that reaches it often cheap.
    Diagnostic& error(Loc loc, std::string message) {
        std::size_t before = diags_.error_count();
        spend_on_message(message.size(), loc);
        Diagnostic& d = diags_.error(loc, std::move(message));
        return diags_.error_count() == before ? d : with_calls(d);
    }
    Diagnostic& warning(Loc loc, std::string message) {
        std::size_t before = diags_.warning_count();
        spend_on_message(message.size(), loc);
        Diagnostic& d = diags_.warning(loc, std::move(message));
        return diags_.warning_count() == before ? d : with_calls(d);
    }
    Diagnostic& with_calls(Diagnostic& d);

    Loc declared_at(const std::string& name) const;
    void check_primitive(const ast::Primitive& p);
    void check_params(const std::vector<ast::Param>& params);
    bool check_type(const ast::Param& param, const Value& v, Loc loc, const std::string& callee);

    Value eval(const Expr& e, const Env& env);
    Value eval_chain(const Expr& e, const Env& env);
    Value eval_sum(const Expr& e, const Env& env);
    Value eval_product(const Expr& e, const Env& env);
    Value eval_compose(const Expr& e, const Env& env);
    Value eval_power(const Expr& e, const Env& env);
    Value eval_tuple(const Expr& e, const Env& env);
    Value call(const std::string& name, Loc name_loc, const std::vector<ast::Arg>& args, const Expr& site,
               const Env& env);
    Value call_definition(const ast::Definition& def, const std::vector<ast::Arg>& args, const Expr& site,
                          const Env& env);
    Value instantiate(const ast::Primitive& p, const std::vector<ast::Arg>& args, const Expr& site,
                      const Env& env);
    Value tare(const std::vector<ast::Arg>& args, const Expr& site, const Env& env);

    struct Binding {
        bool ok = true;
        Env values;                                 // bound parameters, in the callee's scope
        std::vector<Loc> arg_locs;                  // per parameter: where its value came from
        std::map<std::string, const ast::Arg*> extras;  // keyword arguments outside the parameters
    };
    Binding bind(const std::string& callee, Loc decl_loc, const std::vector<ast::Param>& params,
                 const std::vector<ast::Arg>& args, const std::set<std::string>& extra_keywords, const Expr& site,
                 const Env& env);

    std::optional<Rational> number_in(const Expr& e, const Env& env, const std::string& what_for);
    std::optional<Pattern> pattern(const Expr& e, const Env& local, const ast::Primitive& p);

    bool small_enough(const Rational& n, Loc loc);
    NodePtr scaled(NodePtr module, const Rational& c, Loc loc, bool warn_negative);
    NodePtr mul_bond(const Rational& c, Loc loc, bool warn_negative);
    NodePtr counted(NodePtr node);
    NodePtr copy_of(const NodePtr& node, Loc loc);
    std::vector<std::string> names_in_scope(const Env& env) const;
};

NodePtr Elaborator::counted(NodePtr node) {
    if (++modules_ > kMaxModules) throw TooLarge{node->loc};
    // Building it summed its children's masses and multiplied their sensitivities; later stages
    // compute with its numbers again.
    spend_on_numbers(node->mass, node->sensitivity, node->loc);
    return node;
}

NodePtr Elaborator::copy_of(const NodePtr& node, Loc loc) {
    std::size_t size = ir::count_nodes(*node);
    modules_ += size;
    if (modules_ > kMaxModules) throw TooLarge{loc};
    spend(size, loc);
    return ir::clone(*node);
}

Loc Elaborator::declared_at(const std::string& name) const {
    if (auto d = defs_.find(name); d != defs_.end()) return d->second->name_loc;
    if (auto p = primitives_.find(name); p != primitives_.end()) return p->second->name_loc;
    return {};
}

void Elaborator::declare(const ast::File& file) {
    auto claim = [&](const std::string& name, Loc loc) {
        if (kBuiltins.count(name)) {
            error(loc, "'" + name + "' is a built-in and cannot be redefined");
            return false;
        }
        if (Loc previous = declared_at(name); previous.valid()) {
            auto& d = error(loc, "redefinition of '" + name + "'");
            Diagnostics::note(d, previous, "'" + name + "' was first defined here");
            return false;
        }
        return true;
    };
    for (const auto& p : file.primitives)
        if (claim(p.name, p.name_loc)) {
            primitives_[p.name] = &p;
            check_primitive(p);
        }
    for (const auto& d : file.definitions) {
        if (claim(d.name, d.name_loc)) defs_[d.name] = &d;
        check_params(d.params);
    }
}

// Checks of a declaration that do not depend on its arguments.
void Elaborator::check_params(const std::vector<ast::Param>& params) {
    std::set<std::string> seen;
    for (const auto& param : params) {
        if (!seen.insert(param.name).second) error(param.loc, "parameter '" + param.name + "' declared twice");
        if (param.type && *param.type != "dim" && *param.type != "number" && *param.type != "module")
            error(param.type_loc,
                         "unknown parameter type '" + *param.type + "'; expected 'dim', 'number' or 'module'");
    }
}

// Checks an argument against its parameter's declared type, if any.
bool Elaborator::check_type(const ast::Param& param, const Value& v, Loc loc, const std::string& callee) {
    if (!param.type || v.is_error()) return true;
    std::string where = "argument '" + param.name + "' of '" + callee + "'";
    if (*param.type == "module" && !v.is_module()) {
        error(loc, where + " must be a module, but this is a number");
        return false;
    }
    if ((*param.type == "number" || *param.type == "dim") && !v.is_number()) {
        error(loc, where + " must be a number, but this is a module");
        return false;
    }
    if (*param.type == "dim" && !is_dimension(v.number)) {
        error(loc, where + " is a dimension and must be a positive integer" +
                              std::string(v.number > 0 && is_integer(v.number) ? " of practical size" : "") +
                              ", but is " + to_string(v.number));
        return false;
    }
    return true;
}

void Elaborator::check_primitive(const ast::Primitive& p) {
    check_params(p.params);
    std::set<std::string> allowed = p.is_atom ? std::set<std::string>{"shape", "norm", "mass", "sensitivity"}
                                              : std::set<std::string>{"sensitivity"};
    std::set<std::string> fields;
    for (const auto& f : p.fields) {
        if (!allowed.count(f.name)) {
            std::string hint = closest_match(f.name, {allowed.begin(), allowed.end()});
            std::string msg = "unknown field '" + f.name + "' in " + (p.is_atom ? "atom" : "bond") + " '" + p.name + "'";
            if (!p.is_atom && (f.name == "shape" || f.name == "norm" || f.name == "mass"))
                msg += "; bonds have no weights, so no " + f.name;
            else if (!hint.empty())
                msg += "; did you mean '" + hint + "'?";
            error(f.loc, msg);
        }
        if (!fields.insert(f.name).second) error(f.loc, "field '" + f.name + "' set twice");
        if (f.name == "norm" && (f.value->kind != ExprKind::Name || !find_norm(f.value->text)))
            error(f.value->loc, "'norm' must name one of the known norms (see docs/language.md)");
    }
    if (p.is_atom && !fields.count("shape")) error(p.name_loc, "atom '" + p.name + "' declares no 'shape'");
    if (p.is_atom && !fields.count("norm")) error(p.name_loc, "atom '" + p.name + "' declares no 'norm'");
}

std::vector<std::string> Elaborator::names_in_scope(const Env& env) const {
    std::vector<std::string> names;
    for (const auto& [n, _] : env) names.push_back(n);
    for (const auto& [n, _] : defs_) names.push_back(n);
    for (const auto& [n, _] : primitives_) names.push_back(n);
    names.insert(names.end(), kBuiltins.begin(), kBuiltins.end());
    return names;
}

Value Elaborator::eval(const Expr& e, const Env& env) {
    spend(1, e.loc);
    switch (e.kind) {
        case ExprKind::Number: {
            auto n = parse_decimal(e.text);
            if (!n) {
                error(e.loc, "number '" + e.text + "' is out of range");
                return Value::error();
            }
            spend_on_numbers(*n, 0, e.loc);
            return Value::of(*n, e.loc);
        }
        case ExprKind::Name:
            if (auto it = env.find(e.text); it != env.end()) {
                if (it->second.is_module()) return Value::of(copy_of(it->second.module, e.loc), e.loc);
                Value v = it->second;
                v.loc = e.loc;
                return v;
            }
            return call(e.text, e.loc, {}, e, env);
        case ExprKind::Call:
            if (env.count(e.text)) {
                error(e.name_loc, "'" + e.text + "' is a parameter, not a definition; it cannot be called");
                return Value::error();
            }
            return call(e.text, e.name_loc, e.args, e, env);
        case ExprKind::Tuple: return eval_tuple(e, env);
        case ExprKind::Negate: {
            Value v = eval(*e.operands[0], env);
            if (v.is_number()) {
                spend_on_numbers(v.number, 0, e.loc);
                return Value::of(-v.number, e.loc);
            }
            if (v.is_module()) return Value::of(scaled(std::move(v.module), -1, e.ops[0].loc, false), e.loc);
            return v;
        }
        case ExprKind::Chain: return eval_chain(e, env);
        case ExprKind::Power: return eval_power(e, env);
        case ExprKind::Named: {
            Value v = eval(*e.operands[0], env);
            if (v.is_number()) {
                error(e.name_loc, "'as' names a module, but this is a number");
                return Value::error();
            }
            if (v.is_module()) {
                v.module->label = e.text;
                v.module->named = true;
            }
            return v;
        }
    }
    throw InternalError("unknown expression kind");
}

Value Elaborator::eval_chain(const Expr& e, const Env& env) {
    const std::string& op = e.ops.front().symbol;
    if (op == "+" || op == "-") return eval_sum(e, env);
    if (op == "*" || op == "/") return eval_product(e, env);
    if (op == "@") return eval_compose(e, env);
    if (op == "<" || op == ">" || op == "<=" || op == ">=" || op == "==" || op == "!=") {
        error(e.ops.front().loc, "comparisons ('" + op + "') are allowed in optimizer blocks only");
        return Value::error();
    }
    throw InternalError("unknown operator " + op);
}

Value Elaborator::eval_tuple(const Expr& e, const Env& env) {
    std::vector<NodePtr> items;
    bool ok = true;
    for (const auto& item : e.operands) {
        Value v = eval(*item, env);
        if (v.is_number()) {
            error(item->loc, "a tuple holds modules, but this item is a number");
            ok = false;
        }
        if (!v.is_module()) ok = false;
        if (ok) items.push_back(v.module);
    }
    if (!ok) return Value::error();
    return Value::of(counted(Node::tuple(std::move(items), e.loc)), e.loc);
}

// a + b - c: numbers add up; modules make Add @ (a, b, Mul(-1) @ c).
Value Elaborator::eval_sum(const Expr& e, const Env& env) {
    std::vector<Value> operands;
    for (const auto& o : e.operands) operands.push_back(eval(*o, env));
    for (const auto& v : operands)
        if (v.is_error()) return Value::error();
    const Value& first = operands.front();
    bool ok = true;
    for (std::size_t i = 1; i < operands.size(); ++i)
        if (operands[i].kind != first.kind) {
            auto& d = error(e.ops[i - 1].loc, "cannot " + std::string(e.ops[i - 1].symbol == "+" ? "add " : "subtract ") +
                                                        what(operands[i]) + (e.ops[i - 1].symbol == "+" ? " to " : " from ") +
                                                        what(first));
            Diagnostics::note(d, e.operands[i]->loc, "this is " + what(operands[i]));
            ok = false;
        }
    if (!ok) return Value::error();
    if (first.is_number()) {
        Rational sum = first.number;
        for (std::size_t i = 1; i < operands.size(); ++i) {
            spend_on_numbers(sum, operands[i].number, e.loc);
            sum = e.ops[i - 1].symbol == "+" ? sum + operands[i].number : sum - operands[i].number;
            if (!small_enough(sum, e.loc)) return Value::error();
        }
        return Value::of(sum, e.loc);
    }
    std::vector<NodePtr> terms{first.module};
    std::vector<Pattern> inputs{Pattern::variable("x")};
    for (std::size_t i = 1; i < operands.size(); ++i) {
        NodePtr term = operands[i].module;
        if (e.ops[i - 1].symbol == "-") term = scaled(term, -1, e.ops[i - 1].loc, false);
        terms.push_back(term);
        inputs.push_back(Pattern::variable("x"));
    }
    NodePtr add = counted(Node::bond("Add", {}, {}, 1, Pattern::tuple(inputs), Pattern::variable("x"), e.ops[0].loc));
    NodePtr tuple = counted(Node::tuple(std::move(terms), e.loc));
    return Value::of(counted(Node::compose({tuple, add}, e.loc)), e.loc);
}

Value Elaborator::eval_product(const Expr& e, const Env& env) {
    Value acc = eval(*e.operands[0], env);
    for (std::size_t i = 1; i < e.operands.size(); ++i) {
        Value rhs = eval(*e.operands[i], env);
        const ast::Op& op = e.ops[i - 1];
        if (acc.is_error() || rhs.is_error()) {
            acc = Value::error();
            continue;
        }
        Loc loc = span(acc.loc, rhs.loc);
        bool divide = op.symbol == "/";
        if (acc.is_module() && rhs.is_module()) {
            error(op.loc, std::string("cannot ") + (divide ? "divide" : "multiply") +
                                     " two modules; compose them with '@'");
            acc = Value::error();
        } else if (divide && rhs.is_module()) {
            error(op.loc, "cannot divide by a module");
            acc = Value::error();
        } else if (divide && rhs.number == 0) {
            error(e.operands[i]->loc, "division by zero");
            acc = Value::error();
        } else if (acc.is_number() && rhs.is_number()) {
            spend_on_numbers(acc.number, rhs.number, loc);
            acc = Value::of(divide ? acc.number / rhs.number : acc.number * rhs.number, loc);
            if (!small_enough(acc.number, loc)) acc = Value::error();
        } else {
            // c * M, M * c and M / c all scale the module's output: Mul(c) @ M.
            Value& module = acc.is_module() ? acc : rhs;
            Rational c = acc.is_number() ? acc.number : (divide ? 1 / rhs.number : rhs.number);
            Loc factor_loc = acc.is_number() ? acc.loc : rhs.loc;
            acc = Value::of(scaled(std::move(module.module), c, factor_loc, true), loc);
        }
    }
    return acc;
}

// a @ b @ c runs c first: the IR keeps children in run order.
Value Elaborator::eval_compose(const Expr& e, const Env& env) {
    std::vector<NodePtr> run_order;
    bool ok = true;
    for (auto it = e.operands.rbegin(); it != e.operands.rend(); ++it) {
        Value v = eval(**it, env);
        if (v.is_number()) {
            error((*it)->loc, "'@' composes modules, but this is a number");
            ok = false;
        }
        if (!v.is_module()) ok = false;
        if (ok) run_order.push_back(v.module);
    }
    if (!ok) return Value::error();
    return Value::of(counted(Node::compose(std::move(run_order), e.loc)), e.loc);
}

Value Elaborator::eval_power(const Expr& e, const Env& env) {
    Value base = eval(*e.operands[0], env);
    Value exponent = eval(*e.operands[1], env);
    if (base.is_error() || exponent.is_error()) return Value::error();
    const Expr& exp_expr = *e.operands[1];
    if (exponent.is_module()) {
        error(exp_expr.loc, "an exponent must be a number, but this is a module");
        return Value::error();
    }
    if (!is_integer(exponent.number)) {
        error(exp_expr.loc, "an exponent must be an integer, but this is " + to_string(exponent.number));
        return Value::error();
    }
    if (base.is_number()) {
        // The result has about bit_size(base) * |exponent| bits; power() refuses past 2 * kMaxBits.
        Rational bits = Rational(bit_size(base.number)) * abs(exponent.number);
        spend(1 + (bits > Rational(2 * kMaxBits) ? 2 * kMaxBits : bits.convert_to<std::size_t>()) / 2, e.loc);
        auto result = power(base.number, boost::multiprecision::numerator(exponent.number));
        if (!result) {
            error(e.loc, base.number == 0 ? "zero cannot be raised to a negative power"
                                                 : "this power is too large to compute exactly");
            return Value::error();
        }
        return Value::of(*result, e.loc);
    }
    const Rational& n = exponent.number;
    if (n < 0) {
        error(exp_expr.loc, "a module can only be raised to a non-negative integer power, not " + to_string(n));
        return Value::error();
    }
    std::size_t size = ir::count_nodes(*base.module);
    if (n > Rational(kMaxModules) || n * size + modules_ > kMaxModules) {
        error(e.loc, to_string(n) + " copies of this module would exceed modc's limit of " +
                                std::to_string(kMaxModules) + " modules");
        return Value::error();
    }
    auto copies = n.convert_to<std::int64_t>();
    if (copies == 0)
        return Value::of(counted(Node::bond("Identity", {}, {}, 1, Pattern::variable("x"), Pattern::variable("x"),
                                            e.loc)),
                         e.loc);
    std::vector<NodePtr> run_order{base.module};
    for (std::int64_t i = 1; i < copies; ++i) run_order.push_back(copy_of(base.module, e.loc));
    return Value::of(counted(Node::power(std::move(run_order), e.loc)), e.loc);
}

NodePtr Elaborator::mul_bond(const Rational& c, Loc loc, bool warn_negative) {
    if (c < 0 && warn_negative)
        warning(loc, "multiplying a module by the negative number " + to_string(c) +
                                " flips the sign of its output; its sensitivity is taken as |" + to_string(c) +
                                "| = " + to_string(abs(c)));
    return counted(Node::bond("Mul", {"c"}, {c}, abs(c), Pattern::variable("x"), Pattern::variable("x"), loc));
}

// Past kMaxNumberBits exact arithmetic gets slow; results of + - * / are refused there, as
// powers are.
bool Elaborator::small_enough(const Rational& n, Loc loc) {
    if (bit_size(n) <= kMaxNumberBits) return true;
    error(loc, "this number is too large to compute exactly");
    return false;
}

// Mul(c) @ module. The module is moved in, so that a chain of scalings reuses one composition.
NodePtr Elaborator::scaled(NodePtr module, const Rational& c, Loc loc, bool warn_negative) {
    Loc whole = span(loc, module ? module->loc : loc);
    std::vector<NodePtr> run_order;
    run_order.push_back(std::move(module));
    run_order.push_back(mul_bond(c, loc, warn_negative));
    return counted(Node::compose(std::move(run_order), whole));
}

Value Elaborator::call(const std::string& name, Loc name_loc, const std::vector<ast::Arg>& args, const Expr& site,
                       const Env& env) {
    if (name == "tare") return tare(args, site, env);
    if (auto d = defs_.find(name); d != defs_.end()) return call_definition(*d->second, args, site, env);
    if (auto p = primitives_.find(name); p != primitives_.end()) return instantiate(*p->second, args, site, env);
    std::string msg = "unknown name '" + name + "'";
    std::vector<std::string> names = names_in_scope(env);
    spend(names.size(), name_loc);  // the suggestion compares the name with each
    std::string hint = closest_match(name, names);
    if (!hint.empty()) msg += "; did you mean '" + hint + "'?";
    auto& d = error(name_loc, msg);
    if (!hint.empty() && declared_at(hint).valid()) Diagnostics::note(d, declared_at(hint), "'" + hint + "' is declared here");
    return Value::error();
}

Elaborator::Binding Elaborator::bind(const std::string& callee, Loc decl_loc, const std::vector<ast::Param>& params,
                                     const std::vector<ast::Arg>& args, const std::set<std::string>& extra_keywords,
                                     const Expr& site, const Env& env) {
    Binding b;
    std::vector<const ast::Arg*> given(params.size(), nullptr);
    std::size_t positional = 0;
    bool seen_keyword = false;
    for (const auto& arg : args) {
        if (!arg.keyword) {
            if (seen_keyword) {
                error(arg.value->loc, "a positional argument cannot follow a keyword argument");
                b.ok = false;
            } else if (positional >= params.size()) {
                auto given = std::count_if(args.begin(), args.end(), [](const ast::Arg& a) { return !a.keyword; });
                std::string takes = params.empty() ? "takes no arguments"
                                                   : "takes " + std::to_string(params.size()) + " argument" +
                                                         (params.size() == 1 ? "" : "s");
                auto& d = error(arg.value->loc, "'" + callee + "' " + takes + ", but " + std::to_string(given) +
                                                           (given == 1 ? " was given" : " were given"));
                if (decl_loc.valid()) Diagnostics::note(d, decl_loc, "'" + callee + "' is declared here");
                b.ok = false;
                break;
            } else {
                given[positional++] = &arg;
            }
            continue;
        }
        seen_keyword = true;
        auto it = std::find_if(params.begin(), params.end(), [&](const ast::Param& p) { return p.name == *arg.keyword; });
        if (it != params.end()) {
            auto& slot = given[static_cast<std::size_t>(it - params.begin())];
            if (slot) {
                error(arg.keyword_loc, "argument '" + *arg.keyword + "' is given twice");
                b.ok = false;
            }
            slot = &arg;
        } else if (extra_keywords.count(*arg.keyword)) {
            if (b.extras.count(*arg.keyword)) {
                error(arg.keyword_loc, "argument '" + *arg.keyword + "' is given twice");
                b.ok = false;
            }
            b.extras[*arg.keyword] = &arg;
        } else {
            std::vector<std::string> names(extra_keywords.begin(), extra_keywords.end());
            for (const auto& p : params) names.push_back(p.name);
            spend(names.size(), arg.keyword_loc);
            std::string hint = closest_match(*arg.keyword, names);
            error(arg.keyword_loc, "'" + callee + "' has no parameter '" + *arg.keyword + "'" +
                                              (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
            b.ok = false;
        }
    }
    b.arg_locs.resize(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto& p = params[i];
        Value v;
        if (given[i]) {
            v = eval(*given[i]->value, env);
            b.arg_locs[i] = given[i]->value->loc;
        } else if (p.default_value) {
            v = eval(*p.default_value, b.values);  // defaults see the earlier parameters
            v.loc = site.loc;
            b.arg_locs[i] = site.loc;
        } else {
            auto& d = error(site.loc, "missing argument '" + p.name + "' of '" + callee + "'");
            if (decl_loc.valid()) Diagnostics::note(d, p.loc, "'" + p.name + "' is declared here");
            b.ok = false;
            continue;
        }
        if (v.is_error()) b.ok = false;
        b.values[p.name] = v;
    }
    return b;
}

Diagnostic& Elaborator::with_calls(Diagnostic& d) {
    constexpr std::size_t kShown = 8;  // innermost calls; a deep chain ends in a count
    std::size_t shown = 0;
    for (std::size_t i = call_sites_.size(); i-- > 0; ++shown) {
        const std::string& name = call_stack_[i + 1]->name;
        if (shown == kShown) {
            Diagnostics::note(d, call_sites_[i], "... and " + std::to_string(i + 1) + " more calls");
            break;
        }
        Diagnostics::note(d, call_sites_[i], "in the expansion of '" + name + "' called here");
    }
    return d;
}

Value Elaborator::call_definition(const ast::Definition& def, const std::vector<ast::Arg>& args, const Expr& site,
                                  const Env& env) {
    if (auto cycle = std::find(call_stack_.begin(), call_stack_.end(), &def); cycle != call_stack_.end()) {
        // Through other definitions, the message names the cycle: 'f' -> 'g' -> 'f'.
        std::string through;
        for (auto it = cycle; it != call_stack_.end(); ++it) through += "'" + (*it)->name + "' -> ";
        // The message names the cycle already: no notes for each call.
        auto& d = diags_.error(site.loc, "'" + def.name + "' is used inside its own definition" +
                                             (call_stack_.end() - cycle > 1 ? " (" + through + "'" + def.name + "')" : "") +
                                             "; definitions cannot be recursive");
        Diagnostics::note(d, def.name_loc, "'" + def.name + "' is defined here");
        return Value::error();
    }
    if (static_cast<int>(call_stack_.size()) >= kMaxCallDepth) {
        error(site.loc, "definitions nest more than " + std::to_string(kMaxCallDepth) + " calls deep");
        return Value::error();
    }
    Binding b = bind(def.name, def.name_loc, def.params, args, {}, site, env);
    for (std::size_t i = 0; i < def.params.size() && b.ok; ++i)
        b.ok = check_type(def.params[i], b.values[def.params[i].name], b.arg_locs[i], def.name);
    if (!b.ok) return Value::error();
    call_stack_.push_back(&def);
    call_sites_.push_back(site.loc);
    Value result = eval(*def.body, b.values);
    call_sites_.pop_back();
    call_stack_.pop_back();
    if (result.is_module() && !result.module->named) result.module->label = def.name;
    result.loc = site.loc;
    return result;
}

std::optional<Rational> Elaborator::number_in(const Expr& e, const Env& env, const std::string& what_for) {
    Value v = eval(e, env);
    if (v.is_module()) error(e.loc, what_for + " must be a number, but this is a module");
    if (!v.is_number()) return std::nullopt;
    return v.number;
}

std::optional<Pattern> Elaborator::pattern(const Expr& e, const Env& local, const ast::Primitive& p) {
    spend(1, e.loc);
    if (e.kind == ExprKind::Tuple) {
        std::vector<Pattern> items;
        for (const auto& item : e.operands) {
            auto sub = pattern(*item, local, p);
            if (!sub) return std::nullopt;
            items.push_back(*sub);
        }
        return Pattern::tuple(std::move(items));
    }
    if (e.kind == ExprKind::Name && e.text == "_") return Pattern::variable("_" + std::to_string(fresh_++));
    if (e.kind == ExprKind::Name && !local.count(e.text)) return Pattern::variable(e.text);
    auto n = number_in(e, local, "a feature size");
    if (!n) return std::nullopt;
    if (!is_dimension(*n)) {
        error(e.loc, "feature size of '" + p.name + "' must be a positive integer, but is " + to_string(*n));
        return std::nullopt;
    }
    return Pattern::of_size(to_int64(*n));
}

Value Elaborator::instantiate(const ast::Primitive& p, const std::vector<ast::Arg>& args, const Expr& site,
                              const Env& env) {
    std::set<std::string> extras = p.is_atom ? std::set<std::string>{"mass", "norm"} : std::set<std::string>{};
    spend(p.params.size() + p.fields.size(), site.loc);  // the lookups below
    Binding b = bind(p.name, p.name_loc, p.params, args, extras, site, env);
    std::vector<std::string> names;
    std::vector<Rational> values;
    for (std::size_t i = 0; i < p.params.size() && b.ok; ++i) {
        const auto& param = p.params[i];
        const Value& v = b.values[param.name];
        if (v.is_module()) {
            error(b.arg_locs[i], "argument '" + param.name + "' of '" + p.name + "' must be a number, but this is a module");
            b.ok = false;
        } else if (param.type == std::string("dim") && !is_dimension(v.number)) {
            error(b.arg_locs[i], "argument '" + param.name + "' of '" + p.name +
                                            "' is a dimension and must be a positive integer, but is " + to_string(v.number));
            b.ok = false;
        }
        names.push_back(param.name);
        values.push_back(v.number);
    }
    if (!b.ok) return Value::error();

    const Env& local = b.values;
    auto field = [&](const std::string& name) -> const ast::Field* {
        for (const auto& f : p.fields)
            if (f.name == name) return &f;
        return nullptr;
    };
    std::string desc = Node::bond(p.name, names, values, 0, {}, {}, site.loc)->describe();

    Rational sensitivity = 1;
    if (const auto* f = field("sensitivity")) {
        auto s = number_in(*f->value, local, "sensitivity");
        if (!s) return Value::error();
        sensitivity = *s;
    }
    if (sensitivity < 0) {
        if (p.is_atom) {
            error(site.loc, "'" + desc + "' has negative sensitivity " + to_string(sensitivity));
            return Value::error();
        }
        warning(site.loc, "'" + desc + "' scales by the negative number " + to_string(sensitivity) +
                                     ": it flips the sign of its output, and its sensitivity is taken as |" +
                                     to_string(sensitivity) + "| = " + to_string(abs(sensitivity)));
        sensitivity = abs(sensitivity);
    }
    auto in = pattern(*p.input, local, p);
    auto out = pattern(*p.output, local, p);
    if (!in || !out) return Value::error();
    if (!p.is_atom) return Value::of(counted(Node::bond(p.name, names, values, sensitivity, *in, *out, site.loc)), site.loc);

    // Atoms: shape, norm and mass.
    std::vector<std::int64_t> shape;
    if (const auto* f = field("shape")) {
        std::vector<const Expr*> sizes;
        if (f->value->kind == ExprKind::Tuple)
            for (const auto& item : f->value->operands) sizes.push_back(item.get());
        else
            sizes.push_back(f->value.get());
        for (const Expr* s : sizes) {
            auto n = number_in(*s, local, "a weight size");
            if (!n) return Value::error();
            if (!is_dimension(*n)) {
                auto& d = error(site.loc, "'" + desc + "' would have a weight size of " + to_string(*n) +
                                                     "; sizes must be positive integers");
                Diagnostics::note(d, s->loc, "the size is computed here");
                return Value::error();
            }
            shape.push_back(to_int64(*n));
        }
    }
    std::string norm;
    Loc norm_loc = site.loc;
    if (const auto* f = field("norm")) norm = f->value->text;
    if (auto it = b.extras.find("norm"); it != b.extras.end()) {
        const Expr& value = *it->second->value;
        norm_loc = value.loc;
        std::vector<std::string> names_of_norms;
        for (const auto& n : known_norms()) names_of_norms.push_back(n.name);
        if (value.kind != ExprKind::Name || !find_norm(value.text)) {
            std::string hint = value.kind == ExprKind::Name ? closest_match(value.text, names_of_norms) : "";
            error(value.loc, "unknown norm '" + diags_.sources().slice(value.loc) + "'" +
                                        (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
            return Value::error();
        }
        norm = value.text;
    }
    const NormInfo* info = find_norm(norm);
    if (!info) return Value::error();  // reported with the declaration
    if (info->rank != static_cast<int>(shape.size())) {
        std::string shape_text;
        for (auto s : shape) shape_text += (shape_text.empty() ? "" : ", ") + std::to_string(s);
        auto& d = error(norm_loc, "norm '" + norm + "' applies to " +
                                             (info->rank == 1 ? std::string("vectors") : info->rank == 2 ? "matrices" : "convolution kernels") +
                                             ", but '" + desc + "' has a weight of shape [" + shape_text + "]");
        (void)d;
        return Value::error();
    }
    Rational mass = 1;
    if (const auto* f = field("mass")) {
        auto m = number_in(*f->value, local, "mass");
        if (!m) return Value::error();
        mass = *m;
    }
    if (auto it = b.extras.find("mass"); it != b.extras.end()) {
        auto m = number_in(*it->second->value, env, "mass");
        if (!m) return Value::error();
        if (*m < 0) {
            error(it->second->value->loc, "mass must be non-negative, but is " + to_string(*m));
            return Value::error();
        }
        mass = *m;
    }
    if (mass < 0) {
        error(site.loc, "'" + desc + "' has negative mass " + to_string(mass));
        return Value::error();
    }
    return Value::of(counted(Node::atom(p.name, names, values, shape, norm, mass, sensitivity, *in, *out, site.loc)),
                     site.loc);
}

Value Elaborator::tare(const std::vector<ast::Arg>& args, const Expr& site, const Env& env) {
    if (args.size() != 2 || (args[0].keyword) || (args[1].keyword && *args[1].keyword != "mass")) {
        error(site.loc, "'tare' takes a module and its new mass: tare(M, mass)");
        return Value::error();
    }
    Value module = eval(*args[0].value, env);
    Value mass = eval(*args[1].value, env);
    if (module.is_error() || mass.is_error()) return Value::error();
    if (!module.is_module()) {
        error(args[0].value->loc, "'tare' needs a module here, but this is a number");
        return Value::error();
    }
    if (!mass.is_number()) {
        error(args[1].value->loc, "the new mass must be a number, but this is a module");
        return Value::error();
    }
    if (mass.number < 0) {
        error(args[1].value->loc, "mass must be non-negative, but is " + to_string(mass.number));
        return Value::error();
    }
    NodePtr m = module.module;
    // scale_masses multiplies the mass of every node by the factor.
    spend(ir::count_nodes(*m) * (1 + (bit_size(m->mass) + bit_size(mass.number)) / 2), site.loc);
    if (m->mass == 0) {
        if (mass.number != 0) {
            error(args[0].value->loc, "cannot tare a module of mass 0 to mass " + to_string(mass.number) +
                                                 ": it has no weights to give the mass to");
            return Value::error();
        }
        return module;
    }
    ir::scale_masses(*m, mass.number / m->mass);
    return Value::of(m, site.loc);
}

std::optional<ir::Network> Elaborator::network(const ast::Definition& def,
                                               const std::map<std::string, Rational>& overrides) {
    std::size_t errors_before = diags_.error_count();
    std::size_t steps_before = std::min(steps_, kMaxElaborationSteps);
    modules_ = 0;
    call_stack_ = {&def};
    call_sites_.clear();
    Value body;
    budgeted_ = true;
    try {
        Env env;
        for (const auto& p : def.params) {
            if (auto it = overrides.find(p.name); it != overrides.end()) {
                env[p.name] = Value::of(it->second, p.loc);
            } else if (p.default_value) {
                env[p.name] = eval(*p.default_value, env);
                if (!check_type(p, env[p.name], p.default_value->loc, def.name)) env[p.name] = Value::error();
            } else {
                error(p.loc, "parameter '" + p.name + "' of network '" + def.name +
                                 "' has no default; give it one or set it with --set " + p.name + "=VALUE");
                env[p.name] = Value::error();
            }
        }
        for (const auto& entry : overrides) {
            const std::string& name = entry.first;  // a structured binding: lambdas capture one only from C++20
            if (std::none_of(def.params.begin(), def.params.end(), [&](const ast::Param& p) { return p.name == name; }))
                error(def.name_loc, "network '" + def.name + "' has no parameter '" + name + "' to set");
        }
        body = eval(*def.body, env);
    } catch (const TooLarge& t) {
        budgeted_ = false;
        auto& d = error(def.name_loc, "network '" + def.name + "' grows past modc's limit of " +
                                                 std::to_string(kMaxModules) + " modules");
        Diagnostics::note(d, t.loc, "the limit is reached here");
        return std::nullopt;
    } catch (const TooMuchWork& t) {
        budgeted_ = false;
        auto& d = error(def.name_loc, "network '" + def.name + "' takes more than modc's limit of " +
                                          std::to_string(kMaxElaborationSteps) + " steps to elaborate");
        Diagnostics::note(d, t.loc, "the limit is reached here");
        if (steps_before > 0)
            Diagnostics::note(d, def.name_loc, "the limit holds for the whole file; the networks before this one took " +
                                                   std::to_string(steps_before) + " steps");
        return std::nullopt;
    } catch (const ir::NumberTooLarge& t) {
        budgeted_ = false;
        error(t.loc, "the " + t.what + " of this module is too large to compute exactly");
        return std::nullopt;
    }
    budgeted_ = false;
    call_stack_.clear();
    if (body.is_number()) {
        error(def.body->loc, "network '" + def.name + "' must describe a module, but its body is a number");
        return std::nullopt;
    }
    if (!body.is_module() || diags_.error_count() != errors_before) return std::nullopt;
    return ir::Network{def.name, def.name_loc, body.module, {}};
}

}  // namespace

std::vector<ir::Network> elaborate(const ast::File& prelude, const ast::File& file, Diagnostics& diags,
                                   const ElaborateOptions& options) {
    Elaborator elaborator(diags);
    elaborator.declare(prelude);
    elaborator.declare(file);
    std::vector<ir::Network> networks;
    for (const auto& def : file.definitions) {
        if (!def.is_network || (!options.only_network.empty() && def.name != options.only_network)) continue;
        if (auto n = elaborator.network(def, options.overrides)) networks.push_back(std::move(*n));
    }
    return networks;
}

}  // namespace modc
