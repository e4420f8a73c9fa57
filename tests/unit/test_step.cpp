// The optimizer step (issue 11) through the C++ API: modc::Optimizer against a reference
// written here that runs the same statements in double, with the network's own Dualizer
// standing in for dualize(...) (tested against the exact maps in test_cpu.cpp). Several steps
// with state carried over and hyperparameters changed between them, f32 and f64, every kind
// of map, in place on the caller's buffers; the state API; and the errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "library/modc.hpp"

using namespace modc;

namespace {

const char* const kNetwork =
    "network n = (Flatten @ Linear(16, 24) @ Flatten, Flatten @ Linear(24, 16) @ Flatten, Flatten @ Embed(8, 20) @ "
    "Flatten,\n  Flatten @ Conv2D(4, 6, 3) @ Flatten, Flatten @ Bias(12) @ Flatten, Flatten @ Gain(12) @ Flatten)\n";

const char* const kOptimizers = R"(
optimizer nesterov_wd(lr = 0.02, beta = 0.95, wd = 0.01) {
    m = beta * m + grad
    W -= lr * wd * W
    W -= lr * dualize(grad + beta * m)
}
optimizer two(lr = 0.1, beta = 0.9) {
    m = beta * m + grad
    W -= lr * (dualize(grad) + 0.5 * dualize(m))
}
optimizer temporary(lr = 0.1, beta = 0.9, wd = 0.1) {
    m = beta * m + grad
    d = dualize(m)
    W -= lr * d + lr * wd * W
}
optimizer powers(lr = 0.5, k = 3) {
    W -= lr / (1 + k) ^ 2 * dualize(-(-grad))
}
optimizer no_default(lr) {
    W -= lr * dualize(grad)
}
)";

using Tensors = std::vector<std::vector<double>>;
using Hypers = std::map<std::string, double>;

// One step of each optimizer above, in double; dualize maps all weights at once.
using Dualize = std::function<Tensors(const Tensors&)>;
void reference_step(const std::string& opt, Tensors& w, const Tensors& g, std::map<std::string, Tensors>& state,
                    Hypers h, const Dualize& dualize) {
    auto each = [&](Tensors& out, const std::function<double(std::size_t, std::size_t)>& f) {
        for (std::size_t i = 0; i < out.size(); ++i)
            for (std::size_t e = 0; e < out[i].size(); ++e) out[i][e] = f(i, e);
    };
    Tensors arg = g;
    if (opt == "powers") {
        Tensors u = dualize(g);
        each(w, [&](std::size_t i, std::size_t e) { return w[i][e] - h["lr"] / std::pow(1 + h["k"], 2) * u[i][e]; });
        return;
    }
    Tensors& m = state["m"];
    if (m.empty()) m = Tensors(g.size()), std::transform(g.begin(), g.end(), m.begin(), [](auto& t) { return std::vector<double>(t.size()); });
    each(m, [&](std::size_t i, std::size_t e) { return h["beta"] * m[i][e] + g[i][e]; });
    if (opt == "nesterov_wd") {
        each(w, [&](std::size_t i, std::size_t e) { return w[i][e] - h["lr"] * h["wd"] * w[i][e]; });
        each(arg, [&](std::size_t i, std::size_t e) { return g[i][e] + h["beta"] * m[i][e]; });
        Tensors u = dualize(arg);
        each(w, [&](std::size_t i, std::size_t e) { return w[i][e] - h["lr"] * u[i][e]; });
    } else if (opt == "two") {
        Tensors a = dualize(g), b = dualize(m);
        each(w, [&](std::size_t i, std::size_t e) { return w[i][e] - h["lr"] * (a[i][e] + 0.5 * b[i][e]); });
    } else if (opt == "temporary") {
        Tensors d = dualize(m);
        each(w, [&](std::size_t i, std::size_t e) { return w[i][e] - (h["lr"] * d[i][e] + h["lr"] * h["wd"] * w[i][e]); });
    }
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
    return std::vector<T>(v.begin(), v.end());
}

// Gradients with decaying spectra and mixed magnitudes, not only Gaussian ones.
Tensors gradients(std::mt19937_64& rng, const std::vector<WeightInfo>& weights, int step) {
    std::normal_distribution<double> normal;
    Tensors g;
    for (std::size_t i = 0; i < weights.size(); ++i) {
        std::vector<double> t(static_cast<std::size_t>(weights[i].elements()));
        double magnitude = std::pow(10.0, (static_cast<int>(i) + step) % 5 * 4 - 8);  // 1e-8 .. 1e8
        for (std::size_t e = 0; e < t.size(); ++e) t[e] = magnitude * normal(rng) / static_cast<double>(1 + e % 7);
        if (step == 1 && i == 4) std::fill(t.begin(), t.end(), 0.0);  // a zero gradient
        g.push_back(std::move(t));
    }
    return g;
}

template <class T>
void check_against_reference(const std::string& name, DType dtype, double tolerance) {
    OptimizerOptions options;
    options.optimizer = name;
    options.dtype = dtype;
    options.threads = 1;
    const std::string text = std::string(kNetwork) + kOptimizers;
    Optimizer opt = compile_optimizer_text("step.mod", text, options);
    Dualizer dualizer = compile_source_text("step.mod", text, options);
    // dualize(...) as the step runs it: in T, on the reference's argument rounded to T.
    Dualize dualize = [&](const Tensors& in) {
        std::vector<std::vector<T>> a, b;
        std::vector<const T*> ap;
        std::vector<T*> bp;
        for (const auto& t : in) a.push_back(cast<T>(t)), b.emplace_back(t.size());
        for (std::size_t i = 0; i < a.size(); ++i) ap.push_back(a[i].data()), bp.push_back(b[i].data());
        dualizer.run(ap.data(), bp.data());
        Tensors out;
        for (const auto& t : b) out.emplace_back(t.begin(), t.end());
        return out;
    };
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal;
    Tensors w_ref;
    for (const auto& info : opt.weights()) {
        w_ref.emplace_back(static_cast<std::size_t>(info.elements()));
        for (auto& v : w_ref.back()) v = static_cast<double>(static_cast<T>(normal(rng)));
    }
    std::vector<std::vector<T>> w;
    for (const auto& t : w_ref) w.push_back(cast<T>(t));
    std::map<std::string, Tensors> state;
    const std::vector<Hypers> schedule = {{{"lr", 0.05}, {"beta", 0.9}, {"wd", 0.1}, {"k", 3}},
                                          {{"lr", 0.02}, {"beta", 0.5}, {"wd", 0.0}, {"k", 1}},
                                          {{"lr", 0.01}, {"beta", 0.99}, {"wd", 0.3}, {"k", 0.5}}};
    for (int step = 0; step < 3; ++step) {
        INFO(name << ", " << (dtype == DType::F64 ? "f64" : "f32") << ", step " << step + 1);
        Hypers h = schedule[static_cast<std::size_t>(step)];
        for (const auto& hyper : opt.hyperparameters()) opt.set_hyperparameter(hyper, h.at(hyper));
        Tensors g = gradients(rng, opt.weights(), step);
        std::vector<std::vector<T>> gt;
        for (const auto& t : g) gt.push_back(cast<T>(t));
        Tensors g_seen;  // what the step sees
        for (const auto& t : gt) g_seen.emplace_back(t.begin(), t.end());
        Tensors before = w_ref;
        reference_step(name, w_ref, g_seen, state, h, dualize);
        std::vector<T*> wp;
        std::vector<const T*> gp;
        for (std::size_t i = 0; i < w.size(); ++i) wp.push_back(w[i].data()), gp.push_back(gt[i].data());
        opt.step(wp.data(), gp.data());
        for (std::size_t i = 0; i < w.size(); ++i) {
            double err = 0, size = 0, norm = 0;
            for (std::size_t e = 0; e < w[i].size(); ++e) {
                err += std::pow(static_cast<double>(w[i][e]) - w_ref[i][e], 2);
                size += std::pow(w_ref[i][e] - before[i][e], 2);
                norm += w_ref[i][e] * w_ref[i][e];
            }
            // Relative to the step, plus what storing W in T costs by itself.
            double allowed = tolerance * std::sqrt(size) + 4 * std::numeric_limits<T>::epsilon() * std::sqrt(norm) * (step + 1);
            INFO("weight " << opt.weights()[i].path);
            CHECK(std::sqrt(err) <= allowed);
            bool zero_grad = std::all_of(g[i].begin(), g[i].end(), [](double v) { return v == 0; });
            if (!zero_grad) CHECK(std::sqrt(size) > 0);
        }
        // Carry the reference on from what the optimizer holds, so that rounding does not add up.
        for (std::size_t i = 0; i < w.size(); ++i) w_ref[i].assign(w[i].begin(), w[i].end());
        for (const auto& s : opt.state_names()) {
            for (std::size_t i = 0; i < w.size(); ++i) {
                std::vector<T> got(w[i].size());
                opt.read_state(s, i, got.data());
                for (std::size_t e = 0; e < got.size(); ++e)
                    CHECK(static_cast<double>(got[e]) == Approx(state[s][i][e]).epsilon(tolerance).margin(1e-300));
                state[s][i].assign(got.begin(), got.end());
            }
        }
    }
    CHECK(opt.steps() == 3);
}

}  // namespace

TEST_CASE("step: optimizers against a reference over three steps, f32 and f64", "[step]") {
    for (const char* name : {"nesterov_wd", "two", "temporary", "powers"}) {
        check_against_reference<double>(name, DType::F64, 1e-12);
        check_against_reference<float>(name, DType::F32, 1e-5);
    }
}

TEST_CASE("step: hyperparameters, state and errors", "[step]") {
    const std::string text = std::string(kNetwork) + kOptimizers;
    OptimizerOptions options;
    options.optimizer = "temporary";
    Optimizer opt = compile_optimizer_text("step.mod", text, options);
    CHECK(opt.name() == "temporary");
    CHECK(opt.hyperparameters() == std::vector<std::string>{"lr", "beta", "wd"});
    CHECK(opt.state_names() == std::vector<std::string>{"m"});  // d is assigned before it is read: a temporary
    CHECK(opt.hyperparameter("beta") == 0.9);
    opt.set_hyperparameter("beta", 0.5);
    CHECK(opt.hyperparameter("beta") == 0.5);
    CHECK_THROWS_WITH(opt.set_hyperparameter("betta", 1), Catch::Contains("did you mean 'beta'?"));
    CHECK_THROWS_WITH(opt.hyperparameter("gamma"), Catch::Contains("has no hyperparameter 'gamma'"));
    std::vector<float> buffer(static_cast<std::size_t>(opt.weights()[0].elements()), 3.0f);
    CHECK_THROWS_WITH(opt.read_state("d", 0, buffer.data()), Catch::Contains("has no state 'd'"));
    CHECK_THROWS_WITH(opt.read_state("m", 99, buffer.data()), Catch::Contains("out of range"));
    CHECK(opt.weights()[0].path == "linear[0]");
    CHECK(opt.weights()[0].target == Approx(1.0 / 6));
    CHECK(opt.weights()[0].scale == Approx(std::sqrt(16.0 / 24) / 6));

    // write_state, then zero_state.
    opt.write_state("m", 0, buffer.data());
    std::vector<float> back(buffer.size());
    opt.read_state("m", 0, back.data());
    CHECK(back == buffer);
    opt.zero_state();
    opt.read_state("m", 0, back.data());
    CHECK(back == std::vector<float>(buffer.size(), 0.0f));

    // The dtype compiled for, and nothing else.
    std::vector<std::vector<double>> w;
    std::vector<double*> wp;
    for (const auto& info : opt.weights()) w.emplace_back(static_cast<std::size_t>(info.elements()), 1.0);
    for (auto& t : w) wp.push_back(t.data());
    std::vector<const double*> gp(wp.begin(), wp.end());
    CHECK_THROWS_WITH(opt.step(wp.data(), gp.data()), Catch::Contains("compiled for f32"));

    options.optimizer = "no_default";
    Optimizer no_default = compile_optimizer_text("step.mod", text, options);
    std::vector<std::vector<float>> wf;
    std::vector<float*> wfp;
    for (const auto& info : no_default.weights()) wf.emplace_back(static_cast<std::size_t>(info.elements()), 1.0f);
    for (auto& t : wf) wfp.push_back(t.data());
    std::vector<const float*> gfp(wfp.begin(), wfp.end());
    CHECK_THROWS_WITH(no_default.step(wfp.data(), gfp.data()), Catch::Contains("'lr' of optimizer 'no_default' has no default"));
    no_default.set_hyperparameter("lr", 0.1);
    no_default.step(wfp.data(), gfp.data());
    CHECK(no_default.steps() == 1);

    options.optimizer = "nesterov_dw";
    CHECK_THROWS_WITH(compile_optimizer_text("step.mod", text, options), Catch::Contains("did you mean 'nesterov_wd'?"));
    options.optimizer.clear();
    CHECK_THROWS_WITH(compile_optimizer_text("step.mod", text, options), Catch::Contains("several optimizers"));
    CHECK_THROWS_WITH(compile_optimizer_text("step.mod", kNetwork, options), Catch::Contains("no optimizer block"));
    options.dtype = DType::BF16;
    options.optimizer = "two";
    CHECK_THROWS_AS(compile_optimizer_text("step.mod", text, options), CompileError);
    options.dtype = DType::F32;
    CHECK_THROWS_WITH(compile_optimizer_text("step.mod", std::string(kNetwork) + "optimizer bad(lr = 1) {\n    W -= lr * grad\n}\n",
                                             options),
                      Catch::Contains("ill-typed update"));
}
