// Elaboration (compiler/frontend/elaborate.cpp) and the passes after it (infer_features, name_leaves):
// exact numbers, masses and sensitivities of every kind of module, copies, weight order and
// paths, feature sizes, the shared reference cases and network parameters set from outside.
#include <catch2/catch.hpp>

#include "support.hpp"
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "compiler/analysis/compilation.hpp"

using namespace modc;
using ir::Node;
using ir::NodeKind;

namespace {

using modc::test::read;

std::unique_ptr<Compilation> elaborate_text(const std::string& text, const ElaborateOptions& options = {}) {
    return compile_source("test.mod", text, options, Stage::IR);
}

// The only network of `text`, which must elaborate without errors. The compilation is kept
// alive in `keep`, since the network points into it.
const ir::Network& network_of(const std::string& text, std::unique_ptr<Compilation>& keep,
                              const ElaborateOptions& options = {}) {
    keep = elaborate_text(text, options);
    INFO(text);
    INFO(keep->diags.render());
    REQUIRE_FALSE(keep->diags.has_errors());
    REQUIRE(keep->networks.size() == 1);
    return keep->networks.front();
}

// The value of a number expression, read back from the argument of a Mul bond.
Rational value_of(const std::string& expr) {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("network n = Mul(" + expr + ")\n", c);
    REQUIRE(n.root->kind == NodeKind::Bond);
    REQUIRE(n.root->args.size() == 1);
    return n.root->args[0];
}

std::string str(const Rational& r) { return to_string(r); }

std::string pos(const Compilation& c, Loc loc) {
    if (!loc.valid()) return "<none>";
    auto lc = c.sources.file(loc.file).line_col(loc.begin);
    return std::to_string(lc.line) + ":" + std::to_string(lc.col);
}

std::vector<std::string> messages(const Compilation& c) {
    std::vector<std::string> out;
    for (const auto& d : c.diags.all()) out.push_back(pos(c, d.loc) + ": " + d.message);
    return out;
}

std::vector<std::string> paths(const ir::Network& n) {
    std::vector<std::string> out;
    for (const Node* leaf : n.leaves) out.push_back(leaf->path);
    return out;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("elaborate: numbers are exact rationals", "[elaborate][numbers]") {
    CHECK(str(value_of("12")) == "12");
    CHECK(str(value_of("0.02")) == "1/50");
    CHECK(str(value_of(".5")) == "1/2");
    CHECK(str(value_of("3.")) == "3");
    CHECK(str(value_of("1e-3")) == "1/1000");
    CHECK(str(value_of("1E3")) == "1000");
    CHECK(str(value_of("2.5e+2")) == "250");
    CHECK(str(value_of("0.1 + 0.2")) == "3/10");  // no floating point anywhere
    CHECK(str(value_of("1/3 + 1/6")) == "1/2");
    CHECK(str(value_of("10 / 4")) == "5/2");
    CHECK(str(value_of("8 / 2 / 2")) == "2");  // left to right
    CHECK(str(value_of("3 - 1 - 1")) == "1");
    CHECK(str(value_of("2 * 3 / 4")) == "3/2");
    CHECK(str(value_of("1 - 1/(2*3)")) == "5/6");
    CHECK(str(value_of("-(1/3)")) == "-1/3");
    CHECK(str(value_of("- - 2")) == "2");
    CHECK(str(value_of("1e1000 / 1e999")) == "10");
}

TEST_CASE("elaborate: powers of numbers", "[elaborate][numbers]") {
    CHECK(str(value_of("2^10")) == "1024");
    CHECK(str(value_of("2^-2")) == "1/4");
    CHECK(str(value_of("(2/3)^3")) == "8/27");
    CHECK(str(value_of("(-2)^3")) == "-8");
    CHECK(str(value_of("-2^2")) == "-4");     // ^ before unary minus
    CHECK(str(value_of("2^3^2")) == "512");   // right-associative
    CHECK(str(value_of("2^-1^2")) == "2");    // 2 ^ ((-1) ^ 2)
    CHECK(str(value_of("0^0")) == "1");
    CHECK(str(value_of("0^5")) == "0");
    CHECK(str(value_of("(-1)^1000001")) == "-1");
    CHECK(str(value_of("1^1000000000")) == "1");
    CHECK(str(value_of("4^(1/2 * 2)")) == "4");  // an exponent that evaluates to an integer
}

TEST_CASE("elaborate: errors in number expressions", "[elaborate][numbers][errors]") {
    auto errors = [](const std::string& expr) { return messages(*elaborate_text("network n = Mul(" + expr + ")\n")); };
    CHECK(errors("1/0") == Strings{"1:19: division by zero"});
    CHECK(errors("1/(1-1)") == Strings{"1:19: division by zero"});
    CHECK(errors("0^-1") == Strings{"1:17: zero cannot be raised to a negative power"});
    CHECK(errors("2^(1/2)") == Strings{"1:19: an exponent must be an integer, but this is 1/2"});
    CHECK(errors("10^100000") == Strings{"1:17: this power is too large to compute exactly"});
    CHECK(errors("3^2500 * 3^2500 * 3^2500 * 3^2500") == Strings{"1:17: this number is too large to compute exactly"});
    CHECK(errors("1e1001") == Strings{"1:17: number '1e1001' is out of range"});
}

TEST_CASE("elaborate: masses and sensitivities of compositions", "[elaborate][mass]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("network n = Linear(4, 4) @ ReLU @ Linear(4, 4)\n", c);
    REQUIRE(n.root->kind == NodeKind::Compose);
    CHECK(n.root->children.size() == 3);
    CHECK(str(n.root->mass) == "2");
    CHECK(str(n.root->sensitivity) == "1");
    CHECK(str(n.root->children[1]->mass) == "0");  // ReLU: a bond
    // Compositions multiply sensitivities; a bond's sensitivity comes from its declaration.
    const auto& s = network_of("network n = Softmax(3) @ Mul(1/2) @ Linear(4, 4)\n", c);
    CHECK(str(s.root->mass) == "1");
    CHECK(str(s.root->sensitivity) == "3/2");
}

TEST_CASE("elaborate: scalar multiples are Mul bonds composed after the module", "[elaborate][mass]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("network n = 3 * Linear(4, 4)\n", c);
    REQUIRE(n.root->kind == NodeKind::Compose);
    REQUIRE(n.root->children.size() == 2);
    CHECK(n.root->children[0]->op == "Linear");
    CHECK(n.root->children[1]->op == "Mul");
    CHECK(str(n.root->children[1]->args[0]) == "3");
    CHECK(str(n.root->mass) == "1");
    CHECK(str(n.root->sensitivity) == "3");

    CHECK(str(network_of("network n = Linear(4, 4) / 4\n", c).root->sensitivity) == "1/4");
    CHECK(str(network_of("network n = Linear(4, 4) * 2 * 3\n", c).root->sensitivity) == "6");
    // A negative multiplier keeps its sign in the bond; the sensitivity is its absolute value.
    const auto& neg = network_of("network n = -2 * Linear(4, 4)\n", c);
    CHECK(str(neg.root->children[1]->args[0]) == "-2");
    CHECK(str(neg.root->sensitivity) == "2");
    REQUIRE(c->diags.warning_count() == 1);
    // Unary minus on a module is Mul(-1), without a warning.
    const auto& minus = network_of("network n = -Linear(4, 4)\n", c);
    CHECK(str(minus.root->children[1]->args[0]) == "-1");
    CHECK(str(minus.root->sensitivity) == "1");
    CHECK(c->diags.warning_count() == 0);
}

TEST_CASE("elaborate: tuples add masses and sensitivities", "[elaborate][mass]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("network n = (Linear(4, 4), 2 * ReLU, Linear(4, 4, mass = 1/2))\n", c);
    REQUIRE(n.root->kind == NodeKind::Tuple);
    CHECK(n.root->children.size() == 3);
    CHECK(str(n.root->mass) == "3/2");
    CHECK(str(n.root->sensitivity) == "4");
    const auto& one = network_of("network n = (Linear(4, 4),)\n", c);
    REQUIRE(one.root->kind == NodeKind::Tuple);
    CHECK(one.root->children.size() == 1);
}

TEST_CASE("elaborate: sums are Add over a tuple", "[elaborate][mass]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("network n = Linear(8, 8) + 2 * Linear(8, 8)\n", c);
    REQUIRE(n.root->kind == NodeKind::Compose);
    REQUIRE(n.root->children.size() == 2);
    const Node& tuple = *n.root->children[0];
    const Node& add = *n.root->children[1];
    CHECK(tuple.kind == NodeKind::Tuple);
    CHECK(tuple.children.size() == 2);
    CHECK(add.op == "Add");
    CHECK(add.input_pattern.str() == "(x, x)");
    CHECK(str(n.root->mass) == "2");
    CHECK(str(n.root->sensitivity) == "3");

    // a - b is a + Mul(-1) @ b; three terms make one Add of three.
    const auto& d = network_of("network n = Linear(8, 8) - Linear(8, 8) + ReLU\n", c);
    const Node& terms = *d.root->children[0];
    REQUIRE(terms.children.size() == 3);
    CHECK(terms.children[1]->kind == NodeKind::Compose);
    CHECK(terms.children[1]->children[1]->op == "Mul");
    CHECK(str(terms.children[1]->children[1]->args[0]) == "-1");
    CHECK(d.root->children[1]->input_pattern.str() == "(x, x, x)");
    CHECK(str(d.root->sensitivity) == "3");
    CHECK(str(d.root->mass) == "2");
}

TEST_CASE("elaborate: powers make copies", "[elaborate][power]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("def layer = 2 * Linear(4, 4)\nnetwork n = layer ^ 3\n", c);
    REQUIRE(n.root->kind == NodeKind::Compose);
    CHECK(n.root->is_power);
    REQUIRE(n.root->children.size() == 3);
    for (const auto& copy : n.root->children) CHECK(copy->label == "layer");
    CHECK(str(n.root->mass) == "3");
    CHECK(str(n.root->sensitivity) == "8");
    // Every copy has weights of its own.
    REQUIRE(n.leaves.size() == 3);
    std::set<const Node*> distinct(n.leaves.begin(), n.leaves.end());
    CHECK(distinct.size() == 3);
    std::set<const Node*> copies;
    for (const auto& child : n.root->children) copies.insert(child.get());
    CHECK(copies.size() == 3);
    for (int i = 0; i < 3; ++i) CHECK(n.leaves[i]->leaf_index == i);

    // Copies stay whole, labelled or not.
    const auto& flat = network_of("network n = (2 * Linear(4, 4)) ^ 3\n", c);
    CHECK(flat.root->is_power);
    CHECK(flat.root->children.size() == 3);
    CHECK(str(flat.root->sensitivity) == "8");
    CHECK(flat.leaves.size() == 3);

    // M ^ 1 is one copy; M ^ 0 is the identity.
    const auto& one = network_of("network n = Linear(4, 4) ^ 1\n", c);
    CHECK(one.leaves.size() == 1);
    CHECK(str(one.root->mass) == "1");
    const auto& zero = network_of("network n = Linear(4, 4) ^ 0 @ ReLU\n", c);
    REQUIRE(zero.root->children.size() == 2);
    CHECK(zero.root->children[1]->op == "Identity");
    CHECK(zero.leaves.empty());
    CHECK(str(zero.root->mass) == "0");
}

TEST_CASE("elaborate: every use of a module value is a new copy", "[elaborate][power]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of(
        "def layer = Linear(4, 4)\n"
        "def twice(M) = M @ M\n"
        "network n = twice(layer) @ layer\n",
        c);
    REQUIRE(n.leaves.size() == 3);
    std::set<const Node*> distinct(n.leaves.begin(), n.leaves.end());
    CHECK(distinct.size() == 3);
    CHECK(str(n.root->mass) == "3");
}

TEST_CASE("elaborate: tare sets the mass of a module, spread in proportion", "[elaborate][mass]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("network n = tare(Linear(4, 4) @ Linear(4, 4, mass = 3), 2)\n", c);
    CHECK(str(n.root->mass) == "2");
    REQUIRE(n.leaves.size() == 2);
    CHECK(str(n.leaves[0]->mass) == "3/2");
    CHECK(str(n.leaves[1]->mass) == "1/2");
    CHECK(str(n.root->sensitivity) == "1");

    CHECK(str(network_of("network n = tare(Linear(4, 4), mass = 5)\n", c).root->mass) == "5");
    CHECK(str(network_of("network n = tare(ReLU, 0)\n", c).root->mass) == "0");
    const auto& zero = network_of("network n = tare(Linear(4, 4), 0) @ Linear(4, 4)\n", c);
    CHECK(str(zero.leaves[1]->mass) == "0");
    CHECK(str(zero.root->mass) == "1");
}

TEST_CASE("elaborate: atoms and bonds declared in the file", "[elaborate][primitives]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of(
        "atom Scale(d: dim, m = 2) : d -> d { shape = d; norm = linf; mass = m; sensitivity = 1/2 }\n"
        "bond Twice : x -> (x, x) { sensitivity = 2 }\n"
        "network n = Twice @ Scale(3) @ Scale(3, m = 5)\n",
        c);
    REQUIRE(n.leaves.size() == 2);
    CHECK(n.leaves[0]->shape == std::vector<std::int64_t>{3});
    CHECK(n.leaves[0]->norm == "linf");
    CHECK(str(n.leaves[0]->mass) == "5");
    CHECK(str(n.leaves[1]->mass) == "2");
    CHECK(str(n.leaves[0]->sensitivity) == "1/2");
    CHECK(str(n.root->sensitivity) == "1/2");
    CHECK(n.root->output.str() == "(3, 3)");
    // The keyword `norm` of an atom overrides its declaration.
    const auto& spectral = network_of("network n = Linear(4, 2, norm = spectral)\n", c);
    CHECK(spectral.root->norm == "spectral");
    CHECK(spectral.root->shape == std::vector<std::int64_t>{4, 2});
}

TEST_CASE("elaborate: weight order runs from the input side, tuples in order", "[elaborate][order]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("network n = Linear(10, 4) @ ReLU @ Linear(4, 2)\n", c);
    REQUIRE(n.leaves.size() == 2);
    CHECK(n.leaves[0]->describe() == "Linear(4, 2)");  // the input layer comes first
    CHECK(n.leaves[1]->describe() == "Linear(10, 4)");
    CHECK(paths(n) == Strings{"linear[0]", "linear[1]"});

    const auto& t = network_of("network n = Add @ (Linear(3, 2), Linear(3, 2, mass = 2)) @ Linear(2, 5)\n", c);
    REQUIRE(t.leaves.size() == 3);
    CHECK(t.leaves[0]->describe() == "Linear(2, 5)");
    CHECK(str(t.leaves[1]->mass) == "1");  // the tuple's items in written order
    CHECK(str(t.leaves[2]->mass) == "2");
    for (int i = 0; i < 3; ++i) CHECK(t.leaves[i]->leaf_index == i);
}

TEST_CASE("elaborate: weight paths", "[elaborate][paths]") {
    std::unique_ptr<Compilation> c;
    // Atoms are named after their lower-cased atom, numbered where siblings share a name.
    CHECK(paths(network_of("network n = Linear(2, 2)\n", c)) == Strings{"linear"});
    CHECK(paths(network_of("network n = Bias(2) @ Linear(2, 3)\n", c)) == Strings{"linear", "bias"});
    // Defs and `as` label what they make (an `as` on the whole body too); an only weight takes
    // its parent's path.
    const auto& n = network_of(
        "def block(d) = Linear(d, d) @ ReLU\n"
        "def pair(d) = (Linear(d, d), Linear(d, d) as right)\n"
        "network n(d = 4) =\n"
        "    Linear(2, d) @ (block(d) ^ 3 as blocks) @ Add @ pair(d) @ block(d) @ Linear(d, 8) as top\n",
        c);
    CHECK(paths(n) == Strings{"top.linear[0]", "top.block", "top.pair.linear", "top.pair.right",
                              "top.blocks[0].block", "top.blocks[1].block", "top.blocks[2].block", "top.linear[1]"});
    // Unlabelled powers are plain compositions for naming: copies are numbered as siblings.
    CHECK(paths(network_of("network n = Linear(2, 2) ^ 3\n", c)) ==
          Strings{"linear[0]", "linear[1]", "linear[2]"});
    // Paths are unique within a network.
    const auto& g = network_of(read(std::filesystem::path(MODC_SHARED_CASES) / "gpt.mod"), c);
    auto all = paths(g);
    CHECK(std::set<std::string>(all.begin(), all.end()).size() == all.size());
    CHECK(all.size() == 20);
}

TEST_CASE("elaborate: feature sizes of nodes", "[elaborate][features]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of("network n = Linear(10, 4) @ ReLU @ Linear(4, 784)\n", c);
    CHECK(n.root->input.str() == "784");
    CHECK(n.root->output.str() == "10");
    CHECK(n.root->children[1]->input.str() == "4");  // ReLU takes the size of its neighbours
    CHECK(n.root->children[1]->output.str() == "4");

    const auto& t = network_of("network n = (Linear(3, 2), ReLU) @ Linear(2, 5)\n", c);
    CHECK(t.root->input.str() == "5");
    CHECK(t.root->output.str() == "(3, 2)");
    CHECK(t.root->children[1]->input.str() == "2");

    const auto& free = network_of("network n = ReLU @ GELU\n", c);
    CHECK(free.root->input.str() == "?");
    CHECK(free.root->output.str() == "?");

    const auto& sum = network_of("network n = Linear(8, 4) + Linear(8, 4)\n", c);
    CHECK(sum.root->input.str() == "4");
    CHECK(sum.root->output.str() == "8");
    CHECK(sum.root->children[0]->output.str() == "(8, 8)");
}

TEST_CASE("elaborate: every shared reference case elaborates", "[elaborate][reference]") {
    int cases = 0;
    for (const auto& entry : std::filesystem::directory_iterator(MODC_SHARED_CASES)) {
        const auto& path = entry.path();
        if (path.extension() != ".mod") continue;
        ++cases;
        std::string name = path.filename().string();
        auto c = compile_source(name, read(path), {}, Stage::IR);
        INFO(name << "\n" << c->diags.render());
        if (name == "error_dims.mod") {
            CHECK(messages(*c) == Strings{"2:18: modules do not fit: 'Linear(10, 128)' expects 128 features as "
                                          "input, but 'Linear(256, 784)' outputs 256 features"});
            REQUIRE(c->diags.all().size() == 1);
            REQUIRE(c->diags.all()[0].notes.size() == 1);
            CHECK(pos(*c, c->diags.all()[0].notes[0].loc) == "2:43");
        } else {
            // error_sensitivity.mod elaborates; its error comes from the derivation.
            CHECK_FALSE(c->diags.has_errors());
            CHECK(c->networks.size() == 1);
            for (const auto& n : c->networks) {
                CHECK(n.root->input.kind == ir::Features::Kind::Size);
                CHECK_FALSE(n.leaves.empty());
            }
        }
    }
    CHECK(cases >= 7);
}

TEST_CASE("elaborate: the reference MLP in detail", "[elaborate][reference]") {
    std::unique_ptr<Compilation> c;
    const auto& n = network_of(read(std::filesystem::path(MODC_SHARED_CASES) / "mlp.mod"), c);
    CHECK(n.name == "mlp");
    CHECK(n.root->input.str() == "784");
    CHECK(n.root->output.str() == "10");
    CHECK(str(n.root->mass) == "3");
    REQUIRE(n.leaves.size() == 3);
    CHECK(n.leaves[0]->shape == std::vector<std::int64_t>{256, 784});
    CHECK(n.leaves[1]->shape == std::vector<std::int64_t>{256, 256});
    CHECK(n.leaves[2]->shape == std::vector<std::int64_t>{10, 256});
}

TEST_CASE("elaborate: network parameters set from outside (--set)", "[elaborate][overrides]") {
    std::string mlp = read(std::filesystem::path(MODC_SHARED_CASES) / "mlp.mod");
    std::unique_ptr<Compilation> c;
    ElaborateOptions options;
    options.overrides["width"] = 64;
    options.overrides["input"] = Rational(100);
    const auto& n = network_of(mlp, c, options);
    CHECK(n.leaves[0]->shape == std::vector<std::int64_t>{64, 100});
    CHECK(n.leaves[2]->shape == std::vector<std::int64_t>{10, 64});

    SECTION("a parameter without a default can be set") {
        ElaborateOptions d;
        d.overrides["d"] = 3;
        const auto& m = network_of("network n(d) = Linear(d, d)\n", c, d);
        CHECK(m.root->shape == std::vector<std::int64_t>{3, 3});
        auto missing = elaborate_text("network n(d) = Linear(d, d)\n");
        CHECK(messages(*missing) ==
              Strings{"1:11: parameter 'd' of network 'n' has no default; give it one or set it with --set d=VALUE"});
    }
    SECTION("a later parameter's default sees the value set") {
        ElaborateOptions d;
        d.overrides["a"] = 5;
        const auto& m = network_of("network n(a = 2, b = a * 2) = Linear(a, b)\n", c, d);
        CHECK(m.root->shape == std::vector<std::int64_t>{5, 10});
    }
    SECTION("setting an unknown parameter is an error at the network") {
        ElaborateOptions bad;
        bad.overrides["depth"] = 3;
        auto e = elaborate_text(mlp, bad);
        CHECK(messages(*e) == Strings{"3:9: network 'mlp' has no parameter 'depth' to set"});
    }
    SECTION("a value set must still fit the parameter's use") {
        ElaborateOptions bad;
        bad.overrides["width"] = Rational(1, 2);
        auto e = elaborate_text(mlp, bad);
        REQUIRE(e->diags.error_count() >= 1);
        CHECK(e->diags.all()[0].message ==
              "argument 'dout' of 'Linear' is a dimension and must be a positive integer, but is 1/2");
    }
    SECTION("only_network picks one network") {
        ElaborateOptions one;
        one.only_network = "b";
        const auto& b = network_of("network a = Linear(2, 2)\nnetwork b = ReLU\n", c, one);
        CHECK(b.name == "b");
    }
}

TEST_CASE("elaborate: each network of a file is elaborated on its own", "[elaborate]") {
    auto c = elaborate_text(
        "network good = Linear(2, 2)\n"
        "network bad = Linear(2, 3) @ Linear(2, 2)\n"
        "network also_good = ReLU @ Linear(4, 4)\n");
    REQUIRE(c->diags.error_count() == 1);
    std::vector<std::string> names;
    for (const auto& n : c->networks) names.push_back(n.name);
    // The network with the error is not left out by elaboration (the fit is checked after it).
    CHECK(names == Strings{"good", "bad", "also_good"});
}

TEST_CASE("elaborate: the same mistake reached twice is reported once", "[elaborate][errors]") {
    auto c = elaborate_text(
        "def broken = Linear(0, 2)\n"
        "network n = broken @ broken\n");
    CHECK(messages(*c) == Strings{
                              "1:21: argument 'dout' of 'Linear' is a dimension and must be a positive integer, but is 0",
                          });
}

TEST_CASE("elaborate: recursion is reported with its cycle", "[elaborate][errors]") {
    auto direct = elaborate_text("def f = ReLU @ f\nnetwork n = f\n");
    CHECK(messages(*direct) ==
          Strings{"1:16: 'f' is used inside its own definition; definitions cannot be recursive"});
    auto mutual = elaborate_text("def f = g\ndef g = ReLU @ f\nnetwork n = f\n");
    CHECK(messages(*mutual) == Strings{"2:16: 'f' is used inside its own definition ('f' -> 'g' -> 'f'); "
                                       "definitions cannot be recursive"});
    auto network = elaborate_text("network n = ReLU @ n\n");
    CHECK(messages(*network) ==
          Strings{"1:20: 'n' is used inside its own definition; definitions cannot be recursive"});
}

TEST_CASE("elaborate: limits on the size of a network", "[elaborate][errors][limits]") {
    auto huge = elaborate_text("network n = Linear(2, 2) ^ 1000000000\n");
    CHECK(messages(*huge) ==
          Strings{"1:13: 1000000000 copies of this module would exceed modc's limit of 1000000 modules"});
    auto big = elaborate_text("network n = Mul(3) ^ 100000\n");
    CHECK(messages(*big) == Strings{"1:13: the sensitivity of this module is too large to compute exactly"});
    auto calls = elaborate_text([] {
        std::string text = "def f0 = ReLU\n";
        for (int i = 1; i <= 70; ++i)
            text += "def f" + std::to_string(i) + " = f" + std::to_string(i - 1) + "\n";
        return text + "network n = f70\n";
    }());
    REQUIRE(calls->diags.error_count() == 1);
    CHECK(calls->diags.all()[0].message == "definitions nest more than 64 calls deep");
}

TEST_CASE("elaborate: errors inside definitions name the calls that expanded them", "[elaborate][errors]") {
    // A chain of 12 definitions, the error in the innermost: the 8 innermost calls are named,
    // innermost first, then a count of the rest.
    std::string text = "def f0(d) = Linear(d, d) @ (1 + Linear(d, d))\n";
    for (int i = 1; i < 12; ++i)
        text += "def f" + std::to_string(i) + "(d) = f" + std::to_string(i - 1) + "(d) @ ReLU\n";
    text += "network n = f11(4)\n";
    auto c = elaborate_text(text);
    REQUIRE(c->diags.error_count() == 1);
    const auto& d = c->diags.all().front();
    CHECK(pos(*c, d.loc) == "1:31");
    std::vector<std::string> notes;
    for (const auto& n : d.notes) notes.push_back(pos(*c, n.loc) + ": " + n.message);
    REQUIRE(notes.size() == 10);  // 8 calls, the count, "this is a module"
    CHECK(notes[0] == "2:13: in the expansion of 'f0' called here");
    CHECK(notes[7] == "9:13: in the expansion of 'f7' called here");
    CHECK(notes[8] == "10:13: ... and 4 more calls");
    CHECK(notes[9] == "1:33: this is a module");
    // At the top level, an error has no such notes.
    auto top = elaborate_text("network n = Linear(4, 4) @ (1 + Linear(4, 4))\n");
    REQUIRE(top->diags.error_count() == 1);
    CHECK(top->diags.all().front().notes.size() == 1);
}
