// The rules of the .mod language. Semantic actions build the AST directly, so every node gets
// its position from the text it matched (x3::_where), with no reliance on annotate_on_success.
//
//   declaration := definition | primitive | optimizer
//   definition  := ("def" | "network") NAME params? "=" expr
//   primitive   := ("atom" | "bond") NAME params? ":" expr "->" expr ("{" field* "}")?
//   optimizer   := "optimizer" NAME params? "{" (rule | statement)* "}"
//   rule        := "for" SELECTOR ("," SELECTOR)* "{" statement* "}"     SELECTOR := (letter | "_" | "*") (letter | digit | "_" | "." | "*" | "[" | "]")*
//   params      := "(" (param ("," param)*)? ")"        param := NAME (":" NAME)? ("=" expr)?
//   field       := NAME "=" expr ";"?                   statement := NAME ("=" | "-=" | "+=") expr ";"?
//   expr        := compare ("as" NAME)?
//   compare     := additive (("<" | "<=" | ">" | ">=" | "==" | "!=") additive)*   (one, in a checked block)
//   additive    := compose (("+" | "-") compose)*
//   compose     := product ("@" product)*
//   product     := unary (("*" | "/") unary)*
//   unary       := "-"* power
//   power       := primary ("^" "-"* primary)*          (right-associative)
//   primary     := NUMBER | NAME args? | "(" expr ("," expr)* ","? ")"
//   args        := "(" (arg ("," arg)*)? ")"             arg := (NAME "=")? expr
#pragma once
#include <algorithm>
#include <boost/fusion/include/at_c.hpp>

#include "grammar/ast.hpp"
#include "grammar/config.hpp"
#include "grammar/grammar.hpp"

namespace modc::grammar {

using boost::fusion::at_c;
using x3::char_;
using x3::lexeme;
using x3::lit;

struct Ident {
    std::string name;
    Loc loc;
};

template <class Ctx>
ParseState& state(Ctx const& ctx) {
    return x3::get<state_tag>(ctx).get();
}

// Rules whose ID derives from `located` get the position of the text they matched. (X3's
// annotate_on_success does not tag variant attributes in Boost 1.74, and _where in actions
// does not give the match's range, so modc tags positions itself.)
inline void set_loc(ast::ExprPtr& e, Loc loc) {
    if (e) e->loc = loc;
}
inline void set_loc(Ident& i, Loc loc) { i.loc = loc; }
inline void set_loc(ast::Op& o, Loc loc) { o.loc = loc; }
template <class T>
void set_loc(T&, Loc) {}

struct located {
    template <class It, class A, class Ctx>
    void on_success(It const& first, It const& last, A& attr, Ctx const& ctx) {
        set_loc(attr, state(ctx).loc(first, last));
    }
};

inline ast::ExprPtr make_expr(ast::ExprKind kind, Loc loc) {
    auto e = std::make_shared<ast::Expr>();
    e->kind = kind;
    e->loc = loc;
    return e;
}

// Sets the depth of a node whose operands and arguments are in place, and refuses a tree
// deeper than kMaxExprDepth (reported at `where`) before anything can recurse over it.
inline void set_depth(ast::Expr& e, Loc where) {
    int below = 0;
    for (const auto& o : e.operands)
        if (o) below = std::max(below, o->depth);
    for (const auto& a : e.args)
        if (a.value) below = std::max(below, a.value->depth);
    e.depth = below + 1;
    if (e.depth > kMaxExprDepth) throw ExprTooDeep{where};
}

// Applies prefix minus signs, innermost last: `- - x` is Negate(Negate(x)).
inline ast::ExprPtr apply_negations(const std::vector<ast::Op>& signs, ast::ExprPtr operand) {
    for (auto it = signs.rbegin(); it != signs.rend(); ++it) {
        auto e = make_expr(ast::ExprKind::Negate, span(it->loc, operand->loc));
        e->ops.push_back(*it);
        e->operands.push_back(std::move(operand));
        set_depth(*e, it->loc);
        operand = std::move(e);
    }
    return operand;
}

// ---- actions -------------------------------------------------------------------------------

auto const make_ident = [](auto& ctx) {
    auto& range = x3::_attr(ctx);
    x3::_val(ctx) = Ident{std::string(range.begin(), range.end()), state(ctx).loc(range.begin(), range.end())};
};

auto const make_op = [](auto& ctx) {
    auto& range = x3::_attr(ctx);
    x3::_val(ctx) = ast::Op{std::string(range.begin(), range.end()), state(ctx).loc(range.begin(), range.end())};
};

auto const make_number = [](auto& ctx) {
    auto& range = x3::_attr(ctx);
    auto e = make_expr(ast::ExprKind::Number, state(ctx).loc(range.begin(), range.end()));
    e->text.assign(range.begin(), range.end());
    x3::_val(ctx) = e;
};

auto const make_chain = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    ast::ExprPtr first = at_c<0>(attr);
    auto& rest = at_c<1>(attr);
    if (rest.empty()) {
        x3::_val(ctx) = first;
        return;
    }
    auto e = make_expr(ast::ExprKind::Chain, first->loc);
    e->operands.push_back(first);
    for (auto& item : rest) {
        e->ops.push_back(at_c<0>(item));
        e->operands.push_back(at_c<1>(item));
        e->loc = span(e->loc, at_c<1>(item)->loc);
    }
    set_depth(*e, e->loc);
    x3::_val(ctx) = e;
};

auto const make_unary = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    x3::_val(ctx) = apply_negations(at_c<0>(attr), at_c<1>(attr));
};

auto const make_power = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    auto& rest = at_c<1>(attr);
    if (rest.empty()) {
        x3::_val(ctx) = at_c<0>(attr);
        return;
    }
    // a ^ b ^ c is a ^ (b ^ c): fold from the right.
    ast::ExprPtr result = at_c<1>(rest.back());
    for (std::size_t i = rest.size(); i-- > 0;) {
        ast::ExprPtr base = i == 0 ? at_c<0>(attr) : at_c<1>(rest[i - 1]);
        auto e = make_expr(ast::ExprKind::Power, span(base->loc, result->loc));
        e->ops.push_back(at_c<0>(rest[i]));
        e->operands = {base, result};
        set_depth(*e, e->ops.front().loc);
        result = e;
    }
    x3::_val(ctx) = result;
};

auto const make_named = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    ast::ExprPtr inner = at_c<0>(attr);
    auto& name = at_c<1>(attr);
    if (!name) {
        x3::_val(ctx) = inner;
        return;
    }
    auto e = make_expr(ast::ExprKind::Named, span(inner->loc, name->loc));
    e->text = name->name;
    e->name_loc = name->loc;
    e->operands.push_back(inner);
    set_depth(*e, e->loc);
    x3::_val(ctx) = e;
};

auto const make_call = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    Ident& name = at_c<0>(attr);
    auto& args = at_c<1>(attr);
    auto e = make_expr(args ? ast::ExprKind::Call : ast::ExprKind::Name, Loc{});
    e->text = name.name;
    e->name_loc = name.loc;
    if (args) e->args = *args;
    set_depth(*e, name.loc);
    x3::_val(ctx) = e;
};

auto const make_group = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    auto& items = at_c<0>(attr);
    bool trailing_comma = static_cast<bool>(at_c<1>(attr));
    if (items.size() == 1 && !trailing_comma) {
        x3::_val(ctx) = items.front();  // plain parentheses
        return;
    }
    auto e = make_expr(ast::ExprKind::Tuple, Loc{});
    e->operands = items;
    set_depth(*e, items.front()->loc);
    x3::_val(ctx) = e;
};

auto const make_keyword_arg = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    Ident& key = at_c<0>(attr);
    x3::_val(ctx) = ast::Arg{key.name, key.loc, at_c<1>(attr)};
};

auto const make_positional_arg = [](auto& ctx) { x3::_val(ctx) = ast::Arg{std::nullopt, Loc{}, x3::_attr(ctx)}; };

auto const clear = [](auto& ctx) { x3::_val(ctx).clear(); };
auto const push = [](auto& ctx) { x3::_val(ctx).push_back(x3::_attr(ctx)); };

auto const make_param = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    ast::Param p;
    p.name = at_c<0>(attr).name;
    p.loc = at_c<0>(attr).loc;
    if (auto& type = at_c<1>(attr)) {
        p.type = type->name;
        p.type_loc = type->loc;
    }
    if (auto& value = at_c<2>(attr)) p.default_value = *value;
    x3::_val(ctx) = p;
};

auto const make_field = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    x3::_val(ctx) = ast::Field{at_c<0>(attr).name, at_c<0>(attr).loc, at_c<1>(attr)};
};

auto const push_statement = [](auto& ctx) { x3::_val(ctx).statements.push_back(x3::_attr(ctx)); };
auto const push_rule = [](auto& ctx) { x3::_val(ctx).rules.push_back(x3::_attr(ctx)); };
auto const clear_body = [](auto& ctx) { x3::_val(ctx) = ast::Body{}; };

auto const make_selector = [](auto& ctx) {
    auto& range = x3::_attr(ctx);
    x3::_val(ctx) = ast::Selector{std::string(range.begin(), range.end()), state(ctx).loc(range.begin(), range.end())};
};

auto const make_rule = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    ast::Rule r;
    r.selectors = at_c<0>(attr);
    r.statements = at_c<1>(attr);
    r.loc = r.selectors.front().loc;
    x3::_val(ctx) = r;
};

auto const make_statement = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    ast::Statement s;
    s.target = at_c<0>(attr).name;
    s.target_loc = at_c<0>(attr).loc;
    s.assign = at_c<1>(attr);
    s.value = at_c<2>(attr);
    s.loc = span(s.target_loc, s.value->loc);
    x3::_val(ctx) = s;
};

auto const add_definition = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    ast::Definition d;
    auto& keyword = at_c<0>(attr);
    d.is_network = keyword.name == "network";
    d.name = at_c<1>(attr).name;
    d.name_loc = at_c<1>(attr).loc;
    if (auto& params = at_c<2>(attr)) d.params = *params;
    d.body = at_c<3>(attr);
    d.loc = span(keyword.loc, d.body->loc);
    state(ctx).file->definitions.push_back(std::move(d));
};

auto const add_primitive = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    ast::Primitive p;
    auto& keyword = at_c<0>(attr);
    p.is_atom = keyword.name == "atom";
    p.name = at_c<1>(attr).name;
    p.name_loc = at_c<1>(attr).loc;
    if (auto& params = at_c<2>(attr)) p.params = *params;
    p.input = at_c<3>(attr);
    p.output = at_c<4>(attr);
    if (auto& fields = at_c<5>(attr)) p.fields = *fields;
    p.loc = span(keyword.loc, p.output->loc);
    state(ctx).file->primitives.push_back(std::move(p));
};

auto const add_optimizer = [](auto& ctx) {
    auto& attr = x3::_attr(ctx);
    ast::Optimizer o;
    o.name = at_c<0>(attr).name;
    o.name_loc = at_c<0>(attr).loc;
    if (auto& params = at_c<1>(attr)) o.params = *params;
    o.statements = at_c<2>(attr).statements;
    o.rules = at_c<2>(attr).rules;
    o.loc = o.name_loc;
    state(ctx).file->optimizers.push_back(std::move(o));
};

// ---- rules ---------------------------------------------------------------------------------

inline auto kw(char const* word) { return lexeme[lit(word) >> !(alnum | '_')]; }

auto const reserved = kw("def") | kw("network") | kw("atom") | kw("bond") | kw("optimizer") | kw("as") | kw("for");

struct identifier_class : located {};
x3::rule<identifier_class, Ident> const identifier = "name";
struct number_class : located {};
x3::rule<number_class, ast::ExprPtr> const number = "number";
struct expr_class : located {};
x3::rule<expr_class, ast::ExprPtr> const expr = "expression";
struct compare_class : located {};
x3::rule<compare_class, ast::ExprPtr> const compare = "expression";
struct additive_class : located {};
x3::rule<additive_class, ast::ExprPtr> const additive = "expression";
struct compose_class : located {};
x3::rule<compose_class, ast::ExprPtr> const compose = "expression";
struct product_class : located {};
x3::rule<product_class, ast::ExprPtr> const product = "expression";
struct unary_class : located {};
x3::rule<unary_class, ast::ExprPtr> const unary = "expression";
struct power_class : located {};
x3::rule<power_class, ast::ExprPtr> const power = "expression";
struct exponent_class : located {};
x3::rule<exponent_class, ast::ExprPtr> const exponent = "exponent";
struct primary_class : located {};
x3::rule<primary_class, ast::ExprPtr> const primary = "expression";
struct call_class : located {};
x3::rule<call_class, ast::ExprPtr> const call = "name";
struct group_class : located {};
x3::rule<group_class, ast::ExprPtr> const group = "parenthesised expression";
x3::rule<class items_class, std::vector<ast::ExprPtr>> const items = "expression";
x3::rule<class args_class, std::vector<ast::Arg>> const args = "arguments";
x3::rule<class arg_class, ast::Arg> const arg = "argument";
struct add_op_class : located {};
x3::rule<add_op_class, ast::Op> const add_op = "'+' or '-'";
struct compose_op_class : located {};
x3::rule<compose_op_class, ast::Op> const compose_op = "'@'";
struct cmp_op_class : located {};
x3::rule<cmp_op_class, ast::Op> const cmp_op = "comparison";
struct mul_op_class : located {};
x3::rule<mul_op_class, ast::Op> const mul_op = "'*' or '/'";
struct pow_op_class : located {};
x3::rule<pow_op_class, ast::Op> const pow_op = "'^'";
struct neg_op_class : located {};
x3::rule<neg_op_class, ast::Op> const neg_op = "'-'";
struct assign_op_class : located {};
x3::rule<assign_op_class, ast::Op> const assign_op = "'=', '-=' or '+='";
x3::rule<class params_class, std::vector<ast::Param>> const params = "parameter list";
x3::rule<class param_class, ast::Param> const param = "parameter";
x3::rule<class fields_class, std::vector<ast::Field>> const fields = "'{'";
x3::rule<class field_class, ast::Field> const field = "field";
x3::rule<class statements_class, std::vector<ast::Statement>> const statements = "statements";
x3::rule<class statement_class, ast::Statement> const statement = "statement";
x3::rule<class body_class, ast::Body> const body = "'{'";
x3::rule<class rule_class, ast::Rule> const rule = "rule";
struct selector_class : located {};
x3::rule<selector_class, ast::Selector> const selector = "atom name or weight path pattern";
struct definition_keyword_class : located {};
x3::rule<definition_keyword_class, Ident> const definition_keyword = "'def' or 'network'";
struct primitive_keyword_class : located {};
x3::rule<primitive_keyword_class, Ident> const primitive_keyword = "'atom' or 'bond'";
x3::rule<class definition_class> const definition = "definition";
x3::rule<class primitive_class> const primitive = "atom or bond declaration";
x3::rule<class optimizer_class> const optimizer = "optimizer";
x3::rule<class arrow_class> const arrow = "'->'";
x3::rule<class equals_class> const equals = "'='";
x3::rule<class rparen_class> const rparen = "')'";
x3::rule<class rbrace_class> const rbrace = "'}'";
x3::rule<class colon_class> const colon = "':'";
declaration_type const declaration = "declaration";

auto const identifier_def = (!reserved >> x3::raw[lexeme[(alpha | '_') >> *(alnum | '_')]])[make_ident];
auto const number_def = x3::raw[lexeme[((+digit >> -('.' >> *digit)) | ('.' >> +digit)) >>
                                       -(char_("eE") >> -char_("+-") >> +digit)]][make_number];

auto const add_op_def = x3::raw[char_('+') >> !lit('=') | char_('-') >> !lit('>') >> !lit('=')][make_op];
auto const compose_op_def = x3::raw[char_('@')][make_op];
auto const mul_op_def = x3::raw[char_("*/")][make_op];
auto const cmp_op_def = x3::raw[lit("<=") | lit(">=") | lit("==") | lit("!=") | char_('<') | char_('>')][make_op];
auto const pow_op_def = x3::raw[char_('^')][make_op];
auto const neg_op_def = x3::raw[char_('-') >> !lit('>')][make_op];
auto const assign_op_def = x3::raw[lit("-=") | lit("+=") | lit('=')][make_op];

auto const expr_def = (compare >> -(kw("as") > identifier))[make_named];
auto const compare_def = (additive >> *(cmp_op > additive))[make_chain];
auto const additive_def = (compose >> *(add_op > compose))[make_chain];
auto const compose_def = (product >> *(compose_op > product))[make_chain];
auto const product_def = (unary >> *(mul_op > unary))[make_chain];
auto const unary_def = (*neg_op >> power)[make_unary];
auto const power_def = (primary >> *(pow_op > exponent))[make_power];
auto const exponent_def = (*neg_op >> primary)[make_unary];
auto const primary_def = number | call | group;
auto const call_def = (identifier >> -args)[make_call];
auto const group_def = (lit('(') > items > -char_(',') > rparen)[make_group];
auto const items_def = expr % ',';
auto const args_def = lit('(') >> x3::eps[clear] > -(arg[push] % ',') > rparen;
auto const arg_def = (identifier >> lit('=') >> !lit('=') > expr)[make_keyword_arg] | expr[make_positional_arg];

auto const arrow_def = lit("->");
auto const equals_def = lit('=');
auto const rparen_def = lit(')');
auto const rbrace_def = lit('}');
auto const colon_def = lit(':');

auto const params_def = lit('(') >> x3::eps[clear] > -(param[push] % ',') > rparen;
auto const param_def = (identifier >> -(lit(':') > identifier) >> -(lit('=') > expr))[make_param];
auto const fields_def = lit('{') >> x3::eps[clear] > *(field[push]) > rbrace;
auto const field_def = (identifier > equals > expr > -lit(';'))[make_field];
auto const statements_def = lit('{') >> x3::eps[clear] > *(statement[push]) > rbrace;
auto const statement_def = (identifier > assign_op > expr > -lit(';'))[make_statement];

auto const definition_keyword_def = x3::raw[kw("def") | kw("network")][make_ident];
auto const primitive_keyword_def = x3::raw[kw("atom") | kw("bond")][make_ident];
auto const definition_def =
    (definition_keyword > identifier > -params > equals > expr)[add_definition];
auto const primitive_def = (primitive_keyword > identifier > -params > colon > expr > arrow > expr >
                            -fields)[add_primitive];
auto const selector_def = x3::raw[lexeme[(alpha | char_("_*")) >> *(alnum | char_("_.*[]"))]][make_selector];
auto const rule_def = (kw("for") > (selector % ',') > statements)[make_rule];
auto const body_def = lit('{') >> x3::eps[clear_body] > *(rule[push_rule] | statement[push_statement]) > rbrace;
auto const optimizer_def = (kw("optimizer") > identifier > -params > body)[add_optimizer];
auto const declaration_def = definition | primitive | optimizer;

BOOST_SPIRIT_DEFINE(identifier, number, expr, items, compare, additive, compose, product, unary, power, exponent, primary, call,
                    group, args, arg, add_op, compose_op, cmp_op, mul_op, pow_op, neg_op, assign_op, arrow, equals, rparen,
                    rbrace, colon, params, param, fields, field, statements, statement, body, rule, selector, definition_keyword, primitive_keyword, definition, primitive,
                    optimizer, declaration)

}  // namespace modc::grammar

