// Ten training steps with modc's C++ API: compiles the `nesterov_wd` optimizer of
// examples/optimizers.mod, makes weights and gradients of the network's shapes, and takes ten
// in-place steps under a cosine learning-rate schedule, printing per step the learning rate and
// the RMS of each weight's change. It checks its own results and exits 1 if any is wrong.
//
//   train_steps examples/optimizers.mod
//
// The update of `nesterov_wd` is W -= lr * wd * W, then W -= lr * dualize(grad + beta * m).
// For a Linear weight [m, n] dualize gives scale * U V^T (scale from `modc explain`), whose RMS
// is scale / sqrt(max(m, n)); so each change should have an RMS of about
// lr * sqrt((scale / sqrt(max(m, n)))^2 + (wd * RMS(W))^2).
#include <modc/modc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <vector>

namespace {

double rms(const std::vector<float>& a, const std::vector<float>* b = nullptr) {
    double sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        double d = b ? double(a[i]) - double((*b)[i]) : double(a[i]);
        sum += d * d;
    }
    return a.empty() ? 0.0 : std::sqrt(sum / double(a.size()));
}

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        std::fprintf(stderr, "train_steps: FAILED: %s\n", what.c_str());
        ++failures;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: train_steps examples/optimizers.mod\n");
        return 2;
    }
    try {
        modc::OptimizerOptions options;
        options.optimizer = "nesterov_wd";
        modc::Optimizer opt = modc::compile_optimizer_file(argv[1], options);

        // Errors are exceptions, of types the library exports: a misspelt optimizer name.
        try {
            options.optimizer = "nesterov_wdd";
            modc::compile_optimizer_file(argv[1], options);
            check(false, "compiling a misspelt optimizer did not throw");
        } catch (const modc::CompileError& e) {
            check(std::string(e.what()).find("did you mean 'nesterov_wd'?") != std::string::npos,
                  std::string("unexpected message: ") + e.what());
        }

        const auto& weights = opt.weights();
        std::printf("optimizer %s: %zu weights, hyperparameters", opt.name().c_str(), weights.size());
        for (const auto& h : opt.hyperparameters()) std::printf(" %s = %g", h.c_str(), opt.hyperparameter(h));
        std::printf("\n");
        const double lr0 = opt.hyperparameter("lr"), wd = opt.hyperparameter("wd");

        // Weights and gradients, deterministic: small Gaussian weights, unit Gaussian gradients.
        std::mt19937 rng(20240601);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<std::vector<float>> w(weights.size()), g(weights.size());
        for (std::size_t i = 0; i < weights.size(); ++i) {
            w[i].resize(static_cast<std::size_t>(weights[i].elements()));
            g[i].resize(w[i].size());
            for (float& x : w[i]) x = 0.01f * normal(rng);
        }
        std::vector<float*> wp;
        std::vector<const float*> gp;
        for (std::size_t i = 0; i < weights.size(); ++i) {
            wp.push_back(w[i].data());
            gp.push_back(g[i].data());
        }

        const int steps = 10;
        const double pi = std::acos(-1.0);
        for (int s = 0; s < steps; ++s) {
            // Cosine decay from lr0 to lr0 / 10.
            double lr = 0.1 * lr0 + 0.45 * lr0 * (1 + std::cos(pi * s / steps));
            opt.set_hyperparameter("lr", lr);
            check(opt.hyperparameter("lr") == lr, "lr did not take its new value");
            for (auto& gi : g)
                for (float& x : gi) x = normal(rng);
            std::vector<std::vector<float>> before = w;

            opt.step(wp.data(), gp.data());

            std::printf("step %2d  lr %.6f  rms(dW)", s + 1, lr);
            for (std::size_t i = 0; i < weights.size(); ++i) {
                const auto& info = weights[i];
                double change = rms(w[i], &before[i]);
                std::printf("  %s %.3e", info.path.c_str(), change);
                bool finite = std::all_of(w[i].begin(), w[i].end(), [](float x) { return std::isfinite(x); });
                check(finite, info.path + ": a weight is not finite after step " + std::to_string(s + 1));
                check(change > 0, info.path + ": unchanged by step " + std::to_string(s + 1));
                if (info.atom == "Linear" && info.shape.size() == 2) {
                    double side = double(std::max(info.shape[0], info.shape[1]));
                    double dual = info.scale / std::sqrt(side), decay = wd * rms(before[i]);
                    double expected = lr * std::sqrt(dual * dual + decay * decay);
                    double ratio = change / expected;
                    check(ratio > 0.7 && ratio < 1.3, info.path + ": change " + std::to_string(change) +
                                                          " is not about lr * scale / sqrt(max(m, n)) = " +
                                                          std::to_string(expected) + " at step " +
                                                          std::to_string(s + 1));
                }
            }
            std::printf("\n");
        }
        check(opt.steps() == steps, "steps() is " + std::to_string(opt.steps()));

        // The momentum is state the caller can read back (a checkpoint): finite and nonzero.
        for (const auto& name : opt.state_names())
            for (std::size_t i = 0; i < weights.size(); ++i) {
                std::vector<float> state(w[i].size());
                opt.read_state(name, i, state.data());
                double r = rms(state);
                check(std::isfinite(r) && r > 0, "state " + name + " of " + weights[i].path + " has RMS " +
                                                     std::to_string(r));
            }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "train_steps: %s\n", e.what());
        return 1;
    }
    if (failures) {
        std::fprintf(stderr, "train_steps: %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("train_steps: ok\n");
    return 0;
}
