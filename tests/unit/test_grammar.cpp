// The grammar (grammar/grammar_def.hpp): every construct, the precedence of the operators, the
// positions the AST records, and the syntax errors with their exact messages and places,
// including recovery (several errors in one file).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "compiler/analysis/compilation.hpp"
#include "grammar/grammar.hpp"

using namespace modc;

namespace {

std::unique_ptr<Compilation> parse_text(const std::string& text) {
    return compile_source("test.mod", text, {}, Stage::Parse);
}

// The file of a text that must parse without a diagnostic.
std::unique_ptr<Compilation> parse_ok(const std::string& text) {
    auto c = parse_text(text);
    INFO(c->diags.render());
    REQUIRE(c->diags.all().empty());
    return c;
}

std::string pos(const Compilation& c, Loc loc) {
    if (!loc.valid()) return "<none>";
    auto lc = c.sources.file(loc.file).line_col(loc.begin);
    return std::to_string(lc.line) + ":" + std::to_string(lc.col);
}

std::string text_of(const Compilation& c, Loc loc) { return c.sources.slice(loc); }

// A compact rendering that shows how an expression was grouped: every operator node in
// parentheses, chains n-ary, tuples in angle brackets.
std::string show(const ast::Expr& e) {
    using ast::ExprKind;
    switch (e.kind) {
        case ExprKind::Number:
        case ExprKind::Name: return e.text;
        case ExprKind::Call: {
            std::string s = e.text + "(";
            for (std::size_t i = 0; i < e.args.size(); ++i) {
                if (i) s += ", ";
                if (e.args[i].keyword) s += *e.args[i].keyword + "=";
                s += show(*e.args[i].value);
            }
            return s + ")";
        }
        case ExprKind::Tuple: {
            std::string s = "<";
            for (std::size_t i = 0; i < e.operands.size(); ++i) s += (i ? ", " : "") + show(*e.operands[i]);
            return s + ">";
        }
        case ExprKind::Negate: return "(-" + show(*e.operands[0]) + ")";
        case ExprKind::Chain: {
            std::string s = "(" + show(*e.operands[0]);
            for (std::size_t i = 0; i < e.ops.size(); ++i) s += " " + e.ops[i].symbol + " " + show(*e.operands[i + 1]);
            return s + ")";
        }
        case ExprKind::Power: return "(" + show(*e.operands[0]) + " ^ " + show(*e.operands[1]) + ")";
        case ExprKind::Named: return "(" + show(*e.operands[0]) + " as " + e.text + ")";
    }
    return "?";
}

// How the body of `def x = TEXT` is grouped.
std::string grouping(const std::string& expr) {
    auto c = parse_ok("def x = " + expr + "\n");
    REQUIRE(c->file.definitions.size() == 1);
    return show(*c->file.definitions[0].body);
}

// "line:col: message" for every diagnostic, in the order they were reported.
std::vector<std::string> messages(const Compilation& c) {
    std::vector<std::string> out;
    for (const auto& d : c.diags.all()) out.push_back(pos(c, d.loc) + ": " + d.message);
    return out;
}

std::vector<std::string> errors_of(const std::string& text) { return messages(*parse_text(text)); }

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("grammar: networks and defs, with parameters and defaults", "[grammar]") {
    auto c = parse_ok(
        "def block(d, scale = 1/2) = scale * Linear(d, d)\n"
        "network mlp(input = 784, width) = Linear(10, width) @ block(width) @ Linear(width, input)\n"
        "network plain = ReLU\n");
    const auto& defs = c->file.definitions;
    REQUIRE(defs.size() == 3);

    CHECK_FALSE(defs[0].is_network);
    CHECK(defs[0].name == "block");
    REQUIRE(defs[0].params.size() == 2);
    CHECK(defs[0].params[0].name == "d");
    CHECK(defs[0].params[0].default_value == nullptr);
    CHECK_FALSE(defs[0].params[0].type);
    CHECK(defs[0].params[1].name == "scale");
    REQUIRE(defs[0].params[1].default_value);
    CHECK(show(*defs[0].params[1].default_value) == "(1 / 2)");
    CHECK(show(*defs[0].body) == "(scale * Linear(d, d))");

    CHECK(defs[1].is_network);
    CHECK(defs[1].name == "mlp");
    REQUIRE(defs[1].params.size() == 2);
    CHECK(show(*defs[1].params[0].default_value) == "784");
    CHECK(defs[1].params[1].default_value == nullptr);
    CHECK(show(*defs[1].body) == "(Linear(10, width) @ block(width) @ Linear(width, input))");

    CHECK(defs[2].is_network);
    CHECK(defs[2].params.empty());
    CHECK(defs[2].body->kind == ast::ExprKind::Name);

    // Empty parameter lists are allowed and mean the same as none.
    auto e = parse_ok("def f() = ReLU\nnetwork n = f()\n");
    CHECK(e->file.definitions[0].params.empty());
    CHECK(e->file.definitions[1].body->kind == ast::ExprKind::Call);
    CHECK(e->file.definitions[1].body->args.empty());
}

TEST_CASE("grammar: atoms and bonds with signatures and fields", "[grammar]") {
    auto c = parse_ok(
        "atom W(d: dim, k: number = 2) : d -> (d, d) {\n"
        "    shape = (d, d); norm = spectral\n"
        "    mass = k; sensitivity = 1\n"
        "}\n"
        "bond Pair : x -> (x, x)\n"
        "bond Half(c) : (x, _) -> x { sensitivity = c / 2 }\n");
    const auto& ps = c->file.primitives;
    REQUIRE(ps.size() == 3);

    CHECK(ps[0].is_atom);
    CHECK(ps[0].name == "W");
    REQUIRE(ps[0].params.size() == 2);
    CHECK(ps[0].params[0].type == std::string("dim"));
    CHECK(ps[0].params[1].type == std::string("number"));
    CHECK(show(*ps[0].params[1].default_value) == "2");
    CHECK(show(*ps[0].input) == "d");
    CHECK(show(*ps[0].output) == "<d, d>");
    REQUIRE(ps[0].fields.size() == 4);
    CHECK(ps[0].fields[0].name == "shape");
    CHECK(show(*ps[0].fields[0].value) == "<d, d>");
    CHECK(ps[0].fields[1].name == "norm");
    CHECK(show(*ps[0].fields[1].value) == "spectral");
    CHECK(ps[0].fields[2].name == "mass");
    CHECK(ps[0].fields[3].name == "sensitivity");

    CHECK_FALSE(ps[1].is_atom);
    CHECK(ps[1].params.empty());
    CHECK(ps[1].fields.empty());
    CHECK(show(*ps[1].output) == "<x, x>");

    CHECK(show(*ps[2].input) == "<x, _>");
    REQUIRE(ps[2].fields.size() == 1);
    CHECK(show(*ps[2].fields[0].value) == "(c / 2)");
}

TEST_CASE("grammar: optimizer blocks", "[grammar]") {
    auto c = parse_ok(
        "optimizer adam(lr = 0.02, beta = 0.9) {\n"
        "    m = beta * m + (1 - beta) * g;\n"
        "    w -= lr * dualize(m)\n"
        "    v += 1\n"
        "}\n"
        "optimizer empty {}\n");
    const auto& os = c->file.optimizers;
    REQUIRE(os.size() == 2);
    CHECK(os[0].name == "adam");
    REQUIRE(os[0].params.size() == 2);
    CHECK(show(*os[0].params[0].default_value) == "0.02");
    REQUIRE(os[0].statements.size() == 3);
    CHECK(os[0].statements[0].target == "m");
    CHECK(os[0].statements[0].assign.symbol == "=");
    CHECK(show(*os[0].statements[0].value) == "((beta * m) + ((1 - beta) * g))");
    CHECK(os[0].statements[1].target == "w");
    CHECK(os[0].statements[1].assign.symbol == "-=");
    CHECK(show(*os[0].statements[1].value) == "(lr * dualize(m))");
    CHECK(os[0].statements[2].assign.symbol == "+=");
    CHECK(os[1].name == "empty");
    CHECK(os[1].statements.empty());
}

TEST_CASE("grammar: keyword and positional arguments", "[grammar]") {
    CHECK(grouping("Linear(4, din = 8, mass = 3)") == "Linear(4, din=8, mass=3)");
    CHECK(grouping("f(k = a + b, c)") == "f(k=(a + b), c)");  // order is checked when elaborating
    CHECK(grouping("f(g(x = 1), y = (a, b))") == "f(g(x=1), y=<a, b>)");
    CHECK(grouping("f()") == "f()");
}

TEST_CASE("grammar: tuples, trailing commas and plain parentheses", "[grammar]") {
    CHECK(grouping("(ReLU, GELU)") == "<ReLU, GELU>");
    CHECK(grouping("(ReLU, GELU,)") == "<ReLU, GELU>");
    CHECK(grouping("(ReLU,)") == "<ReLU>");  // a 1-tuple
    CHECK(grouping("(ReLU)") == "ReLU");     // parentheses only group
    CHECK(grouping("((ReLU))") == "ReLU");
    CHECK(grouping("((ReLU,),)") == "<<ReLU>>");
    CHECK(grouping("(a, (b, c))") == "<a, <b, c>>");
}

TEST_CASE("grammar: `as` names the whole expression before it", "[grammar]") {
    CHECK(grouping("ReLU as act") == "(ReLU as act)");
    CHECK(grouping("a @ b + c as n") == "(((a @ b) + c) as n)");
    CHECK(grouping("(a as x) @ (b as y)") == "((a as x) @ (b as y))");
    CHECK(grouping("f(a as x)") == "f((a as x))");
    auto c = parse_ok("def x = Linear(2, 2) as first\n");
    const auto& body = *c->file.definitions[0].body;
    REQUIRE(body.kind == ast::ExprKind::Named);
    CHECK(body.text == "first");
    CHECK(pos(*c, body.name_loc) == "1:25");
    CHECK(text_of(*c, body.loc) == "Linear(2, 2) as first");
}

TEST_CASE("grammar: operator precedence", "[grammar][precedence]") {
    // ^ binds tighter than unary minus, which binds tighter than * /, then @, then + -.
    CHECK(grouping("a + b @ c * d ^ e") == "(a + (b @ (c * (d ^ e))))");
    CHECK(grouping("a ^ b * c @ d + e") == "((((a ^ b) * c) @ d) + e)");
    CHECK(grouping("-a ^ b") == "(-(a ^ b))");
    CHECK(grouping("-a * b") == "((-a) * b)");
    CHECK(grouping("- - a") == "(-(-a))");
    CHECK(grouping("a * -b") == "(a * (-b))");
    CHECK(grouping("a @ -b") == "(a @ (-b))");
    CHECK(grouping("a - -b") == "(a - (-b))");
    CHECK(grouping("a * b @ c") == "((a * b) @ c)");
    CHECK(grouping("a @ b * c") == "(a @ (b * c))");
    CHECK(grouping("a @ b + c @ d") == "((a @ b) + (c @ d))");
    CHECK(grouping("(a + b) @ c") == "((a + b) @ c)");
    CHECK(grouping("2 * (a + b)") == "(2 * (a + b))");
}

TEST_CASE("grammar: operators of one level form one n-ary chain", "[grammar][precedence]") {
    CHECK(grouping("a - b + c") == "(a - b + c)");
    CHECK(grouping("a / b * c") == "(a / b * c)");
    CHECK(grouping("a @ b @ c @ d") == "(a @ b @ c @ d)");
    auto c = parse_ok("def x = a @ b @ c\n");
    const auto& body = *c->file.definitions[0].body;
    REQUIRE(body.kind == ast::ExprKind::Chain);
    CHECK(body.operands.size() == 3);
    CHECK(body.ops.size() == 2);
}

TEST_CASE("grammar: ^ is right-associative and takes signed exponents", "[grammar][precedence]") {
    CHECK(grouping("a ^ b ^ c") == "(a ^ (b ^ c))");
    CHECK(grouping("2 ^ 3 ^ 2") == "(2 ^ (3 ^ 2))");
    CHECK(grouping("2 ^ -1") == "(2 ^ (-1))");
    CHECK(grouping("2 ^ - - 1") == "(2 ^ (-(-1)))");
    // The sign belongs to the exponent's primary: 2 ^ -1 ^ 2 is 2 ^ ((-1) ^ 2).
    CHECK(grouping("2 ^ -1 ^ 2") == "(2 ^ ((-1) ^ 2))");
    CHECK(grouping("(a ^ b) ^ c") == "((a ^ b) ^ c)");
    CHECK(grouping("M ^ 3 @ N") == "((M ^ 3) @ N)");
}

TEST_CASE("grammar: numbers", "[grammar]") {
    CHECK(grouping("12") == "12");
    CHECK(grouping("0.02") == "0.02");
    CHECK(grouping(".5") == ".5");
    CHECK(grouping("3.") == "3.");
    CHECK(grouping("1e-3") == "1e-3");
    CHECK(grouping("2.5E+4") == "2.5E+4");
    // A sign is an operator, never part of the literal.
    CHECK(grouping("-1") == "(-1)");
}

TEST_CASE("grammar: comments and whitespace", "[grammar]") {
    auto c = parse_ok(
        "# leading comment\n"
        "network n =   # after the '='\n"
        "\tLinear(2, 2)  # tab-indented\n"
        "  @ ReLU # last\n"
        "# trailing comment without newline");
    REQUIRE(c->file.definitions.size() == 1);
    CHECK(show(*c->file.definitions[0].body) == "(Linear(2, 2) @ ReLU)");
    // Names may contain digits and underscores; keywords are not names, but may begin them.
    CHECK(grouping("_a1 @ define @ network_2 @ asx") == "(_a1 @ define @ network_2 @ asx)");
}

TEST_CASE("grammar: AST positions", "[grammar][positions]") {
    auto c = parse_ok(
        "# a comment\n"
        "network mlp(width = 8) =\n"
        "    Linear(10, width)\n"
        "  @ ReLU\n"
        "atom W(d: dim) : d -> d { shape = d\n"
        "  norm = rms }\n");
    REQUIRE(c->file.definitions.size() == 1);
    const auto& n = c->file.definitions[0];
    CHECK(pos(*c, n.name_loc) == "2:9");
    CHECK(text_of(*c, n.name_loc) == "mlp");
    CHECK(pos(*c, n.loc) == "2:1");
    CHECK(pos(*c, n.params[0].loc) == "2:13");
    CHECK(pos(*c, n.params[0].default_value->loc) == "2:21");

    const auto& body = *n.body;
    REQUIRE(body.kind == ast::ExprKind::Chain);
    CHECK(pos(*c, body.loc) == "3:5");
    CHECK(text_of(*c, body.loc) == "Linear(10, width)\n  @ ReLU");
    CHECK(pos(*c, body.ops[0].loc) == "4:3");
    const auto& call = *body.operands[0];
    CHECK(pos(*c, call.loc) == "3:5");
    CHECK(pos(*c, call.name_loc) == "3:5");
    CHECK(text_of(*c, call.name_loc) == "Linear");
    CHECK(text_of(*c, call.loc) == "Linear(10, width)");
    CHECK(pos(*c, call.args[0].value->loc) == "3:12");
    CHECK(pos(*c, call.args[1].value->loc) == "3:16");
    CHECK(text_of(*c, call.args[1].value->loc) == "width");
    CHECK(pos(*c, body.operands[1]->loc) == "4:5");

    REQUIRE(c->file.primitives.size() == 1);
    const auto& w = c->file.primitives[0];
    CHECK(pos(*c, w.name_loc) == "5:6");
    CHECK(pos(*c, w.params[0].loc) == "5:8");
    CHECK(pos(*c, w.params[0].type_loc) == "5:11");
    CHECK(pos(*c, w.input->loc) == "5:18");
    CHECK(pos(*c, w.output->loc) == "5:23");
    CHECK(pos(*c, w.fields[0].loc) == "5:27");
    CHECK(pos(*c, w.fields[1].loc) == "6:3");
    CHECK(pos(*c, w.fields[1].value->loc) == "6:10");
}

TEST_CASE("grammar: positions of operators, keywords, tuples and signs", "[grammar][positions]") {
    auto c = parse_ok("def x = -a * (b, c) ^ 2 + f(k = 1)\n");
    const auto& sum = *c->file.definitions[0].body;
    REQUIRE(sum.kind == ast::ExprKind::Chain);
    CHECK(pos(*c, sum.ops[0].loc) == "1:25");
    const auto& product = *sum.operands[0];
    CHECK(text_of(*c, product.loc) == "-a * (b, c) ^ 2");
    CHECK(pos(*c, product.ops[0].loc) == "1:12");
    const auto& negate = *product.operands[0];
    REQUIRE(negate.kind == ast::ExprKind::Negate);
    CHECK(pos(*c, negate.ops[0].loc) == "1:9");
    CHECK(text_of(*c, negate.loc) == "-a");
    const auto& power = *product.operands[1];
    REQUIRE(power.kind == ast::ExprKind::Power);
    CHECK(text_of(*c, power.loc) == "(b, c) ^ 2");
    CHECK(pos(*c, power.ops[0].loc) == "1:21");
    CHECK(text_of(*c, power.operands[0]->loc) == "(b, c)");
    const auto& call = *sum.operands[1];
    CHECK(pos(*c, call.args[0].keyword_loc) == "1:29");
    CHECK(pos(*c, call.args[0].value->loc) == "1:33");
}

TEST_CASE("grammar: positions are byte columns, tabs and CRLF included", "[grammar][positions]") {
    auto c = parse_ok("network n =\r\n\tLinear(2, 2)\r\n\t@ ReLU\r\n");
    const auto& body = *c->file.definitions[0].body;
    CHECK(pos(*c, body.operands[0]->loc) == "2:2");
    CHECK(pos(*c, body.ops[0].loc) == "3:2");
    CHECK(text_of(*c, body.operands[1]->loc) == "ReLU");
}

TEST_CASE("grammar: syntax errors, each with its message and position", "[grammar][errors]") {
    SECTION("missing ')'") {
        CHECK(errors_of("network a = Linear(2, 2\n") == Strings{"1:24: expected ')', found end of file"});
        CHECK(errors_of("network a = (ReLU, GELU\nnetwork b = ReLU\n") ==
              Strings{"1:24: expected ')', found 'network'"});
        CHECK(errors_of("def f(a b) = ReLU\n") == Strings{"1:9: expected ')', found 'b'"});
    }
    SECTION("missing '='") {
        CHECK(errors_of("network a Linear(2, 2)\n") == Strings{"1:11: expected '=', found 'Linear'"});
        CHECK(errors_of("def f(x)\n") == Strings{"1:9: expected '=', found end of file"});
        CHECK(errors_of("atom A : x -> x { shape 3 }\n") == Strings{"1:25: expected '=', found '3'"});
    }
    SECTION("missing expression after an operator") {
        CHECK(errors_of("network a = ReLU +\n") == Strings{"1:19: expected expression, found end of file"});
        CHECK(errors_of("network a = ReLU @ @ GELU\n") == Strings{"1:20: expected expression, found '@'"});
        CHECK(errors_of("network a = 2 * )\n") == Strings{"1:17: expected expression, found ')'"});
        CHECK(errors_of("network a = ReLU ^\n") == Strings{"1:19: expected exponent, found end of file"});
        CHECK(errors_of("network a = Linear(2, mass =)\n") == Strings{"1:29: expected expression, found ')'"});
        CHECK(errors_of("network a =\n") == Strings{"1:12: expected expression, found end of file"});
        CHECK(errors_of("network a = ReLU as\n") == Strings{"1:20: expected name, found end of file"});
        CHECK(errors_of("network a = ReLU as def\n") == Strings{"1:21: expected name, found 'def'"});
    }
    SECTION("unexpected token after an expression") {
        CHECK(errors_of("network a = ReLU GELU\n") ==
              Strings{"1:18: unexpected 'GELU'; expected an operator or a new declaration"});
        CHECK(errors_of("network a = ReLU;\n") ==
              Strings{"1:17: unexpected ';'; expected an operator or a new declaration"});
        CHECK(errors_of("network a = ReLU\n}\n") ==
              Strings{"2:1: unexpected '}'; expected an operator or a new declaration"});
        CHECK(errors_of("network a = ReLU $\n") ==
              Strings{"1:18: unexpected '$'; expected an operator or a new declaration"});
    }
    SECTION("bad start of a declaration") {
        CHECK(errors_of("foo bar\n") ==
              Strings{"1:1: expected a declaration ('network', 'def', 'atom', 'bond' or 'optimizer'), found 'foo'"});
        CHECK(errors_of("  123\n") ==
              Strings{"1:3: expected a declaration ('network', 'def', 'atom', 'bond' or 'optimizer'), found '123'"});
        CHECK(errors_of("network = ReLU\n") == Strings{"1:9: expected name, found '='"});
        CHECK(errors_of("def as = ReLU\n") == Strings{"1:5: expected name, found 'as'"});
        CHECK(errors_of("atom A x -> x\n") == Strings{"1:8: expected ':', found 'x'"});
        CHECK(errors_of("atom A : x y\n") == Strings{"1:12: expected '->', found 'y'"});
    }
    SECTION("unterminated brace") {
        CHECK(errors_of("atom A : x -> x { shape = 3\n") == Strings{"1:28: expected '}', found end of file"});
        CHECK(errors_of("atom A : x -> x { shape = 3\nnetwork n = ReLU\n") ==
              Strings{"1:28: expected '}', found 'network'"});
        CHECK(errors_of("optimizer o { w -= 1\n") == Strings{"1:21: expected '}', found end of file"});
    }
    SECTION("a statement without an assignment") {
        CHECK(errors_of("optimizer o { x := 3 }\n") == Strings{"1:17: expected '=', '-=' or '+=', found ':'"});
    }
}

TEST_CASE("grammar: missing text at the end of a line is reported there", "[grammar][errors]") {
    // As clang does: the caret goes after the last token of the line, not onto the next line.
    auto c = parse_text("network a = Linear(2, 2) @\n\n   # comment\nnetwork b = ReLU\n");
    REQUIRE(messages(*c) == Strings{"1:27: expected expression, found 'network'"});
    // The next declaration still parses.
    REQUIRE(c->file.definitions.size() == 1);
    CHECK(c->file.definitions[0].name == "b");
}

TEST_CASE("grammar: recovery reports every syntax error of a file", "[grammar][errors][recovery]") {
    // After an error, parsing resumes at the next line that begins a declaration.
    auto c = parse_text(
        "network one = Linear(2, 2\n"        // missing ')'
        "def ok1 = ReLU\n"
        "def two ReLU\n"                     // missing '='
        "  @ GELU\n"                         // (the rest of the broken declaration: skipped)
        "atom ok2 : x -> x { shape = 2; norm = rms }\n"
        "network three = ReLU @\n"           // missing expression
        "network four = ReLU GELU\n"         // unexpected token after a complete declaration
        "junk here\n"                        // (skipped with the error before it)
        "bond ok3 : x -> x\n"
        "optimizer five { w -= }\n"          // missing expression
        "def ok4 = (ReLU,)\n");
    CHECK(messages(*c) == Strings{
                              "1:26: expected ')', found 'def'",
                              "3:9: expected '=', found 'ReLU'",
                              "6:23: expected expression, found 'network'",
                              "7:21: unexpected 'GELU'; expected an operator or a new declaration",
                              "10:23: expected expression, found '}'",
                          });
    std::vector<std::string> parsed;
    for (const auto& d : c->file.definitions) parsed.push_back(d.name);
    CHECK(parsed == Strings{"ok1", "four", "ok4"});
    REQUIRE(c->file.primitives.size() == 2);
    CHECK(c->file.primitives[0].name == "ok2");
    CHECK(c->file.primitives[1].name == "ok3");
    CHECK(c->file.optimizers.empty());
}

TEST_CASE("grammar: a failure on a declaration keyword resumes there", "[grammar][errors][recovery]") {
    // `network a =` with nothing after it: the next line is still a declaration of its own.
    auto c = parse_text("network a =\nnetwork b = ReLU\n");
    CHECK(messages(*c) == Strings{"1:12: expected expression, found 'network'"});
    REQUIRE(c->file.definitions.size() == 1);
    CHECK(c->file.definitions[0].name == "b");
    // A keyword inside a line is no new declaration: one error, not two.
    auto d = parse_text("network a = ReLU as def\nnetwork b = ReLU\n");
    CHECK(messages(*d) == Strings{"1:21: expected name, found 'def'"});
    REQUIRE(d->file.definitions.size() == 1);
    CHECK(d->file.definitions[0].name == "b");
}

TEST_CASE("grammar: rendered syntax errors point at the token", "[grammar][errors]") {
    auto c = parse_text("network a Linear(2, 2)\n");
    CHECK(c->diags.render() ==
          "test.mod:1:11: error: expected '=', found 'Linear'\n"
          "network a Linear(2, 2)\n"
          "          ^~~~~~\n");
    auto t = parse_text("network a =\n\tReLU @ @ GELU\n");
    CHECK(t->diags.render() ==
          "test.mod:2:9: error: expected expression, found '@'\n"
          "\tReLU @ @ GELU\n"
          "\t       ^\n");
}

TEST_CASE("grammar: nesting deeper than the limit is one located error", "[grammar][errors][limits]") {
    std::string ok = "network a = " + std::string(kMaxNesting, '(') + "ReLU" + std::string(kMaxNesting, ')') + "\n";
    auto fine = parse_text(ok);
    CHECK(fine->diags.all().empty());
    CHECK(fine->file.definitions.size() == 1);

    std::string deep = "network a = " + std::string(kMaxNesting + 1, '(') + "ReLU" +
                       std::string(kMaxNesting + 1, ')') + "\n";
    auto c = parse_text(deep);
    CHECK(messages(*c) == Strings{"1:" + std::to_string(12 + kMaxNesting + 1) + ": brackets nest more than " +
                                  std::to_string(kMaxNesting) + " levels deep"});
    // Brackets in comments do not count.
    auto commented = parse_text("# " + std::string(1000, '(') + "\nnetwork a = ReLU\n");
    CHECK(commented->diags.all().empty());
}

TEST_CASE("grammar: expressions deeper than the limit are one located error", "[grammar][errors][limits]") {
    auto signs = [](int n) {
        std::string s;
        for (int i = 0; i < n; ++i) s += "- ";
        return s;
    };
    // n minus signs over a name make a tree n + 1 levels deep.
    auto fine = parse_text("network a = " + signs(kMaxExprDepth - 1) + "ReLU\n");
    CHECK(fine->diags.all().empty());
    REQUIRE(fine->file.definitions.size() == 1);
    CHECK(fine->file.definitions[0].body->depth == kMaxExprDepth);

    auto c = parse_text("network a = " + signs(kMaxExprDepth) + "ReLU\nnetwork b = ReLU\n");
    CHECK(messages(*c) ==
          Strings{"1:13: expression nests more than " + std::to_string(kMaxExprDepth) + " levels deep"});
    // The rest of the file is still parsed.
    REQUIRE(c->file.definitions.size() == 1);
    CHECK(c->file.definitions[0].name == "b");

    std::string powers = "2";
    for (int i = 0; i < kMaxExprDepth + 5; ++i) powers += "^2";
    auto p = parse_text("def x = " + powers + "\n");
    REQUIRE(p->diags.error_count() == 1);
    CHECK(p->diags.all()[0].message == "expression nests more than " + std::to_string(kMaxExprDepth) + " levels deep");
}

TEST_CASE("grammar: an empty file and a file of comments parse to nothing", "[grammar]") {
    for (const std::string text : {"", "\n\n", "# only a comment", "# one\n# two\n", "  \t\r\n"}) {
        auto c = parse_text(text);
        CHECK(c->diags.all().empty());
        CHECK(c->file.definitions.empty());
        CHECK(c->file.primitives.empty());
        CHECK(c->file.optimizers.empty());
    }
}
