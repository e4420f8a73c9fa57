// The derivation (issue 3): targets against the shared reference cases and against values
// worked out by hand from math.md section 4.
#include <catch2/catch.hpp>

#include "support.hpp"
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/analysis/explain.hpp"
#include "compiler/analysis/compilation.hpp"

using namespace modc;

namespace {

using modc::test::read;

std::unique_ptr<Compilation> compile(const std::string& text) { return compile_source("test.mod", text); }

// The dual plan of the only network in `text`, failing the test on any error.
DualPlan plan_of(const std::string& text) {
    auto c = compile(text);
    INFO(c->diags.render());
    REQUIRE_FALSE(c->diags.has_errors());
    REQUIRE(c->plans.size() == 1);
    return c->plans.front();
}

std::vector<std::string> targets(const DualPlan& p) {
    std::vector<std::string> t;
    for (const auto& l : p.leaves) t.push_back(to_string(l.target));
    return t;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("explain --json matches every shared reference case", "[derive][reference]") {
    int checked = 0;
    for (const auto& entry : std::filesystem::directory_iterator(MODC_SHARED_CASES)) {
        auto path = entry.path();
        if (path.extension() != ".mod") continue;
        auto expected_path = path;
        expected_path.replace_extension(".expected.json");
        if (!std::filesystem::exists(expected_path)) continue;
        SECTION(path.filename().string()) {
            auto expected = nlohmann::json::parse(read(expected_path));
            auto c = compile_source(path.filename().string(), read(path));
            INFO(c->diags.render());
            REQUIRE_FALSE(c->diags.has_errors());
            REQUIRE(c->plans.size() == 1);
            auto got = explain_json(c->plans.front());
            CHECK(got["mass"] == expected["mass"]);
            CHECK(got["sensitivity"] == expected["sensitivity"]);
            REQUIRE(got["leaves"].size() == expected["leaves"].size());
            for (std::size_t i = 0; i < expected["leaves"].size(); ++i) {
                const auto& e = expected["leaves"][i];
                const auto& g = got["leaves"][i];
                INFO("leaf " << i << ": " << g.dump());
                CHECK(g["index"] == e["index"]);
                CHECK(g["atom"] == e["atom"]);
                CHECK(g["shape"] == e["shape"]);
                CHECK(g["target"] == e["target"]);
                CHECK(g["target_value"].get<double>() == Approx(e["target_value"].get<double>()).margin(1e-12));
            }
        }
        ++checked;
    }
    CHECK(checked >= 5);
}

TEST_CASE("explain --json has the documented schema", "[derive][json]") {
    auto json = explain_json(plan_of("network n = Linear(10, 256) @ ReLU @ Linear(256, 784)"));
    for (const char* key : {"network", "mass", "sensitivity", "norm", "leaves"}) CHECK(json.contains(key));
    CHECK(json["network"] == "n");
    const auto& leaf = json["leaves"][0];
    CHECK(leaf["index"] == 0);
    CHECK(leaf["path"] == "linear[0]");
    CHECK(leaf["atom"] == "Linear");
    CHECK(leaf["shape"] == nlohmann::json({256, 784}));
    CHECK(leaf["norm"] == "rms_to_rms");
    CHECK(leaf["map"] == "orthogonalize");
    CHECK(leaf["target"] == "1/2");
    CHECK(leaf["target_value"].get<double>() == 0.5);
    // sqrt(dout/din) t = sqrt(256/784) / 2 = 16/28/2
    CHECK(leaf["scale_value"].get<double>() == Approx(16.0 / 28.0 / 2.0).epsilon(1e-15));
    CHECK(json["leaves"].size() == 2);
}

TEST_CASE("the MLP of math.md section 5", "[derive]") {
    auto p = plan_of("network mlp = Linear(10,256) @ ReLU @ Linear(256,256) @ ReLU @ Linear(256,784)");
    CHECK(targets(p) == Strings{"1/3", "1/3", "1/3"});
    CHECK(p.leaves[0].scale.value() == Approx(0.190476).epsilon(1e-5));
    CHECK(p.leaves[1].scale.value() == Approx(0.333333).epsilon(1e-5));
    CHECK(p.leaves[2].scale.value() == Approx(0.0658808).epsilon(1e-5));
    CHECK(p.leaves[2].scale.str() == "sqrt(10)/48");
    CHECK(p.norm == "3 max(||W||_{RMS -> RMS} for W in linear[0], linear[1], linear[2])");
}

TEST_CASE("masses set by hand and by tare", "[derive][mass]") {
    // Outer Linear mass 1; the tared pair has mass 1 shared as 1/2 + 1/2. Total 2.
    auto p = plan_of("network n = Linear(4,4) @ tare(Linear(4,4) @ Linear(4,4), 1)");
    CHECK(to_string(p.mass) == "2");
    CHECK(targets(p) == Strings{"1/4", "1/4", "1/2"});
    CHECK(to_string(p.leaves[0].mass) == "1/2");

    auto heavy = plan_of("network n = Linear(4,4, mass = 3) @ ReLU @ Linear(4,4)");
    CHECK(targets(heavy) == Strings{"1/4", "3/4"});
}

TEST_CASE("zero mass gives zero targets", "[derive][mass]") {
    auto p = plan_of("network z = Linear(4,4) @ tare(Linear(4,4), 0)");
    CHECK(targets(p) == Strings{"0", "1"});
    CHECK(p.norm == "||linear[1]||_{RMS -> RMS}");
    auto all_zero = plan_of("network z = tare(Linear(4,4) @ Linear(4,4), 0)");
    CHECK(targets(all_zero) == Strings{"0", "0"});
    CHECK(all_zero.norm == "0");
}

TEST_CASE("powers make copies that share the mass", "[derive][power]") {
    auto p = plan_of("network p = (Linear(4,4) @ ReLU) ^ 3");
    CHECK(targets(p) == Strings{"1/3", "1/3", "1/3"});
    auto none = plan_of("network p = Linear(4,4) @ ReLU ^ 0");
    CHECK(targets(none) == Strings{"1"});
}

TEST_CASE("nested sums, tuples and scalars", "[derive][sum]") {
    // Sum: mass 2, sensitivity 1 + 3 = 4; composed after it a Linear of mass 1.
    // t_sum = 2/3; tuple halves: 1/3 each; Mul(3) after B divides B's share by 3.
    auto p = plan_of("network s = Linear(4,4) @ (Linear(4,4) + 3 * Linear(4,4))");
    CHECK(to_string(p.mass) == "3");
    CHECK(to_string(p.sensitivity) == "4");
    CHECK(targets(p) == Strings{"1/3", "1/9", "1/3"});

    // Parenthesised sums nest: A + (B + C) gives A 1/3, and B, C 1/3 each of the inner 2/3.
    auto nested = plan_of("network s = Linear(4,4) + (Linear(4,4) + Linear(4,4))");
    CHECK(targets(nested) == Strings{"1/3", "1/3", "1/3"});
    CHECK(to_string(nested.sensitivity) == "3");

    // Mul(1/2) after both layers: each target doubles relative to plain mass shares.
    auto scaled = plan_of("network c = 1/2 * Linear(4,4) @ Linear(4,4)");
    CHECK(to_string(scaled.sensitivity) == "1/2");
    CHECK(targets(scaled) == Strings{"1", "1"});

    // A tuple feeding a bond that takes a pair: t_i = t mu_i / mu.
    auto tuple = plan_of("network t = AttentionQK @ (Linear(4,4), Linear(4,4, mass = 3))");
    CHECK(targets(tuple) == Strings{"1/4", "3/4"});
}

TEST_CASE("Embed and Conv2D scales", "[derive][atoms]") {
    auto e = plan_of("network e = Linear(50, 8) @ Embed(8, 50, mass = 2)");
    CHECK(targets(e) == Strings{"2/3", "1/3"});
    CHECK(to_string(e.leaves[0].norm->map) == std::string("normalize_columns"));
    // t sqrt(dout) = 2/3 * 2 sqrt(2)
    CHECK(e.leaves[0].scale.str() == "4/3 * sqrt(2)");
    CHECK(e.leaves[1].scale.str() == "5/6");  // 1/3 * sqrt(50/8)

    auto c = plan_of("network cv = Conv2D(16, 3, 3)");
    CHECK(targets(c) == Strings{"1"});
    CHECK(c.leaves[0].shape == std::vector<std::int64_t>{16, 3, 3, 3});
    CHECK(c.leaves[0].scale.value() == Approx(std::sqrt(16.0 / 3.0) / 9.0).epsilon(1e-14));
    CHECK(to_string(c.leaves[0].norm->map) == std::string("orthogonalize_slices"));
}

TEST_CASE("custom atoms and bonds with their own norms and sensitivities", "[derive][custom]") {
    auto p = plan_of(R"(
        atom Scale(d: dim) : d -> d { shape = d  norm = linf  mass = 2 }
        network cu = Linear(4, 4, norm = spectral) @ Scale(4) @ Linear(4, 4, norm = rms_to_linf)
    )");
    CHECK(targets(p) == Strings{"1/4", "1/2", "1/4"});
    CHECK(p.leaves[0].norm->name == "rms_to_linf");
    CHECK(p.leaves[0].scale.str() == "1/8");  // 1/4 * 1/sqrt(4)
    CHECK(p.leaves[1].atom == "Scale");
    CHECK(to_string(p.leaves[1].norm->map) == std::string("sign"));
    CHECK(p.leaves[2].norm->name == "spectral");

    auto h = plan_of(R"(
        bond Half : x -> x { sensitivity = 1/2 }
        network h = Linear(4,4) @ Half @ Linear(4,4)
    )");
    CHECK(targets(h) == Strings{"1", "1/2"});
    CHECK(to_string(h.sensitivity) == "1/2");
}

TEST_CASE("explain --why shows the chain of factors", "[derive][why]") {
    auto p = plan_of("network s = Linear(4,4) @ (Linear(4,4) + 3 * Linear(4,4))");
    auto why = explain_why(p, "linear[1]");
    REQUIRE(why);
    CHECK(why->find("t = 1 at the root") != std::string::npos);
    CHECK(why->find("x 2/3") != std::string::npos);
    CHECK(why->find("divided by sensitivity 3") != std::string::npos);
    CHECK(why->find("target t = 1/9") != std::string::npos);
    CHECK_FALSE(explain_why(p, "nope"));
}

TEST_CASE("a sensitivity of 0 after a weight with mass is a located error", "[derive][errors]") {
    auto c = compile("network broken = 0 * Linear(4, 4) @ Linear(4, 4)\n");
    REQUIRE(c->diags.has_errors());
    CHECK(c->plans.empty());
    std::string text = c->diags.render();
    CHECK(text.find("test.mod:1:18: error: 'Mul(0)' has sensitivity 0") != std::string::npos);
    CHECK(text.find("test.mod:1:37: note: 'Linear(4, 4)' (linear[0]) has mass 1") != std::string::npos);
    // With no mass upstream there is nothing to divide by zero.
    auto fine = compile("network ok = Linear(4, 4) @ 0 * ReLU\n");
    CHECK_FALSE(fine->diags.has_errors());
}

TEST_CASE("a negative scalar multiplier is a warning", "[derive][warnings]") {
    auto c = compile("network n = -2 * Linear(4, 4)\n");
    CHECK_FALSE(c->diags.has_errors());
    CHECK(c->diags.warning_count() == 1);
    REQUIRE(c->plans.size() == 1);
    CHECK(to_string(c->plans[0].sensitivity) == "2");
    CHECK(targets(c->plans[0]) == Strings{"1/2"});  // |-2| after the weight halves its target
}

namespace {
std::string optimizer_errors(const std::string& body) {
    auto c = compile("network n = Linear(2, 2)\noptimizer opt(lr = 0.02, beta = 0.95) {\n" + body + "\n}\n");
    return c->diags.render();
}
}  // namespace

TEST_CASE("the update type check accepts dualized updates", "[typecheck]") {
    CHECK(optimizer_errors("m = beta * m + grad\nW -= lr * dualize(m)") == "");
    CHECK(optimizer_errors("W -= lr * dualize(grad)") == "");
    CHECK(optimizer_errors("u = dualize(grad)\nW = W - lr * u") == "");
}

TEST_CASE("the update type check rejects ill-typed updates", "[typecheck]") {
    std::string raw = optimizer_errors("W -= lr * grad");
    CHECK(raw.find("test.mod:3:6: error: ill-typed update: W -= ... subtracts a dual value (a gradient) from the "
                   "primal weights; dualize it first, e.g. W -= lr * dualize(grad)") != std::string::npos);
    CHECK(raw.find("test.mod:3:3: note: the weights are updated here") != std::string::npos);

    CHECK(optimizer_errors("W -= lr * dualize(W)").find("3:19: error: dualize maps a dual value (a gradient) to the "
                                                         "weight space, but this is already primal") !=
          std::string::npos);
    CHECK(optimizer_errors("W -= dualize(grad) + grad").find("3:20: error: cannot add a primal value and a dual value") !=
          std::string::npos);
    CHECK(optimizer_errors("W -= lr * dualize(gard)").find("unknown name 'gard' in optimizer 'opt'; did you mean "
                                                            "'grad'?") != std::string::npos);
    CHECK(optimizer_errors("m = beta * m + grad\nW -= lr * m").find("4:6: error: ill-typed update") != std::string::npos);
    CHECK(optimizer_errors("u += grad\nW -= lr * dualize(u)") == "");  // state read before it is set
    CHECK(optimizer_errors("u = grad\nu = W\nW -= lr * dualize(u)")
              .find("4:1: error: 'u' is assigned a primal value (in weight space) here, but holds a dual value (a "
                    "gradient) elsewhere") != std::string::npos);
    CHECK(optimizer_errors("W = grad").find("e.g. W = W - lr * dualize(grad)") != std::string::npos);
    CHECK(optimizer_errors("grad = W").find("'grad' is the gradient and cannot be assigned") != std::string::npos);
    CHECK(optimizer_errors("W -= lr").find("needs a value in weight space, but this is a number") != std::string::npos);
    // grad * grad is a second moment: it has no direction (issue 23: W -= lr * v stays refused).
    CHECK(optimizer_errors("W -= grad * grad").find("needs a direction in weight space, but this is a second moment of "
                                                     "dual values (gradients), which has no direction") != std::string::npos);
    CHECK(optimizer_errors("W -= grad * W").find("but this is a number per entry") != std::string::npos);
    CHECK(optimizer_errors("W -= dualize(grad) * abs(grad)").find("cannot multiply a primal value (in weight space) by "
                                                                   "the magnitude of dual values") != std::string::npos);
}
