// compiler/backend/schedule: see schedule.hpp.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>
#include <sstream>

#include "support/diagnostics.hpp"
#include "compiler/backend/schedule.hpp"

namespace modc::kp {

const std::vector<Schedule>& schedules() {
    // Coefficients from math.md section 3.
    static const std::vector<Schedule> all = [] {
        std::vector<Schedule> s;
        s.push_back({"muon", std::vector<Coeffs>(5, Coeffs{3.4445, -4.7750, 2.0315}), 1.0, 1e-7, false, false});
        std::vector<Coeffs> you;
        for (auto [a, b, c] : {std::array<double, 3>{3955, -8306, 5008}, {3735, -6681, 3463}, {3799, -6499, 3211},
                               {4019, -6385, 2906}, {2677, -3029, 1162}, {2172, -1833, 682}})
            you.push_back({a / 1024, b / 1024, c / 1024});
        s.push_back({"you", you, 1.0, 1e-7, false, false});
        s.push_back({"polar-express",
                     {{8.156554524902461, -22.48329292557795, 15.878769915207462},
                      {4.042929935166739, -2.808917465908714, 0.5000178451051316},
                      {3.8916678022926607, -2.772484153217685, 0.5060648178503393},
                      {3.285753657755655, -2.3681294933425376, 0.46449024233003106},
                      {2.3465413258596377, -1.7097828382687081, 0.42323551169305323}},
                     1.02,
                     1e-6,
                     false,
                     false});
        s.push_back({"cubic", {{1.5, -0.5, 0.0}}, 1.0, 1e-7, false, true});
        s.push_back({"svd", {}, 1.0, 0.0, true, false});
        return s;
    }();
    return all;
}

const Schedule* find_schedule(const std::string& name) {
    for (const auto& s : schedules())
        if (s.name == name) return &s;
    return nullptr;
}

namespace {

std::vector<Step> orthogonalize_steps(const Schedule& s) {
    std::vector<Step> steps;
    if (s.exact) {
        steps.push_back({StepKind::SvdPolar});
    } else {
        steps.push_back(Step{StepKind::Normalize, {}, s.norm_scale, s.eps});
        if (s.converge) {
            Step iterate{StepKind::IterateToConvergence, s.steps.front()};
            iterate.tolerance = 1e-6;
            iterate.max_steps = 100;
            steps.push_back(iterate);
        } else {
            for (const auto& c : s.steps) steps.push_back(Step{StepKind::NewtonSchulz, c});
        }
    }
    steps.push_back({StepKind::Finish});
    return steps;
}

}  // namespace

double scalar_error(const Schedule& schedule) {
    if (schedule.exact || schedule.converge) return 0;
    double worst = 0;
    const int samples = 2000;
    for (int i = 0; i <= samples; ++i) {
        double x = std::pow(500.0, -static_cast<double>(i) / samples);  // 1 down to 0.002
        for (const auto& c : schedule.steps) x = c.a * x + c.b * x * x * x + c.c * x * x * x * x * x;
        worst = std::max(worst, std::abs(x - 1));
    }
    return worst;
}

namespace {

// Gram Newton-Schulz pays for its extra m x m products once n is a few times m. It needs a
// fixed step list (not the cubic schedule's convergence test, which watches X itself) and
// c != 0 in every step (A A is what it updates). Schedules whose own error is small (you:
// 0.0044) restart it once, after two steps, to keep its rounding well inside that error.
// Not with the CPU's bf16 matmul inputs: rounding G = X X^T to bf16 loses the singular values
// below about sqrt(2^-8) of the largest, and on i^-1 spectra a Gram run diverges restarted after
// its first step only (errors 9 to 2e5 against f64 for muon, you and polar-express, where the
// direct iteration stays at 0.01-0.02). The CUDA backend's restart after step 1 and then every
// two steps holds on GPT-2 shapes with muon (0.081 against f64 on i^-1, PyTorch's bf16 0.128)
// but not in general: polar-express 0.445 against the direct iteration's 0.0125, and on 64 x 256
// i^-1 gradients 1.4-2.3x PyTorch's bf16 error (bench/bf16_accuracy.py, tests/unit/test_cpu.cpp,
// docs/performance.md). So the CPU's bf16 runs Gram only over its first steps, in another form
// (choose_gram_lead below).
void choose_gram(Group& g, const Schedule& schedule, const LowerOptions& options) {
    if (!options.gram || (options.precision == Precision::BF16 && !options.gram_restart_every)) return;
    int steps = 0;
    for (const auto& s : g.steps) {
        if (s.kind == StepKind::IterateToConvergence || s.kind == StepKind::SvdPolar) return;
        if (s.kind == StepKind::NewtonSchulz && s.coeffs.c == 0) return;
        steps += s.kind == StepKind::NewtonSchulz;
    }
    int restart = scalar_error(schedule) >= 0.05 ? 0 : 2;
    // tf32 and bf16 GEMMs of the CUDA backend: restart after step 1 and then every two steps,
    // which keeps the error near the direct iteration's (docs/cuda.md, Precision), and take any
    // saving of a tenth or more.
    const bool reduced = options.precision != Precision::F32 && options.gram_restart_every;
    if (reduced) restart = 2;
    if (steps < 2 || (restart > 0 && steps <= restart)) return;
    auto m = static_cast<double>(g.small()), n = static_cast<double>(g.large());
    if (newton_schulz_flops(m, n, steps, true, restart, reduced) <= (reduced ? 0.9 : 0.75) * newton_schulz_flops(m, n, steps, false)) {
        g.gram = true;
        g.gram_restart = restart;
        g.gram_restart_every = reduced;
    }
}

// The CPU's bf16 inputs: a Gram run over the first steps (Group::gram_lead), while the
// product alpha of their a stays at most kGramLeadAlpha (muon: 3 steps, alpha = 41; a fourth
// makes it 141; polar-express: 2, alpha = 33). bf16 rounding in the run is amplified by up to
// alpha and the direct steps after it damp it. Measured against float64 (bench/bf16_accuracy.py;
// an emulation of every rounding in NumPy over spectra i^-1, i^-2, rank 16 + noise, rank d/2
// and Gaussian, 3 seeds): muon's lead of 3 on 768 x 3072 ends 0.03-0.05 off (the direct
// iteration 0.006-0.03, PyTorch's bf16 0.055-0.19) and as close on 512 x 1024; on 256 x 1024
// it is 1.2x PyTorch's on i^-1 and on 64 x 256 3.5x, hence m >= kGramLeadMinRows. Only for
// schedules whose own error dwarfs it (scalar_error >= 0.25: muon's 0.3): polar-express's lead
// of 2 ends 0.07-0.11 off on i^-1 and i^-2, next to its own 0.14. And only where it saves at
// least 15% of the flops (n >= 2m): a 768 x 3072 matrix does 47 m^3 instead of 65.
constexpr double kGramLeadAlpha = 50;
constexpr std::int64_t kGramLeadMinRows = 512;

void choose_gram_lead(Group& g, const Schedule& schedule, const LowerOptions& options) {
    if (!options.gram || options.precision != Precision::BF16 || options.gram_restart_every) return;
    if (g.small() < kGramLeadMinRows || scalar_error(schedule) < 0.25) return;
    int steps = 0, lead = 0;
    double alpha = 1;
    for (const auto& s : g.steps) {
        if (s.kind == StepKind::IterateToConvergence || s.kind == StepKind::SvdPolar) return;
        if (s.kind != StepKind::NewtonSchulz) continue;
        ++steps;
        alpha *= s.coeffs.a;
        if (lead + 1 == steps && s.coeffs.c != 0 && alpha <= kGramLeadAlpha) lead = steps;
    }
    auto m = static_cast<double>(g.small()), n = static_cast<double>(g.large());
    if (lead >= 2 && gram_lead_flops(m, n, steps, lead) <= 0.85 * newton_schulz_flops(m, n, steps, false)) g.gram_lead = lead;
}

}  // namespace

KernelPlan lower(const DualPlan& plan, const Schedule& default_schedule,
                 const std::map<std::string, const Schedule*>& per_leaf, const LowerOptions& options) {
    KernelPlan kp;
    kp.network = plan.network;
    kp.schedule = default_schedule.name;
    kp.precision = options.precision;
    kp.leaf_count = plan.leaves.size();
    std::map<std::tuple<MapKind, std::vector<std::int64_t>, std::string>, std::size_t> index;
    for (const auto& leaf : plan.leaves) {
        auto override = per_leaf.find(leaf.path);
        const Schedule& schedule = override == per_leaf.end() ? default_schedule : *override->second;
        bool orthogonal = orthogonalizes(leaf.norm->map);
        auto key = std::make_tuple(leaf.norm->map, leaf.shape, orthogonal ? schedule.name : std::string());
        auto it = index.find(key);
        if (it == index.end()) {
            Group g;
            g.map = leaf.norm->map;
            g.shape = leaf.shape;
            if (orthogonal) g.schedule = schedule.name;
            const auto& s = leaf.shape;
            switch (g.map) {
                case MapKind::Orthogonalize:
                    MODC_ASSERT(s.size() == 2, "orthogonalize needs a matrix");
                    g.rows = s[0];
                    g.cols = s[1];
                    g.transpose = g.rows > g.cols;
                    g.steps = orthogonalize_steps(schedule);
                    break;
                case MapKind::OrthogonalizeSlices:
                    MODC_ASSERT(s.size() == 4, "orthogonalize_slices needs a kernel");
                    g.rows = s[0];
                    g.cols = s[1];
                    g.slices = s[2] * s[3];
                    g.transpose = g.rows > g.cols;
                    g.steps = orthogonalize_steps(schedule);
                    break;
                case MapKind::NormalizeColumns:
                case MapKind::NormalizeRows:
                    MODC_ASSERT(s.size() == 2, "row and column maps need a matrix");
                    g.rows = s[0];
                    g.cols = s[1];
                    g.steps = {{g.map == MapKind::NormalizeColumns ? StepKind::NormalizeColumns : StepKind::NormalizeRows},
                               {StepKind::Finish}};
                    break;
                case MapKind::Normalize:
                case MapKind::Sign:
                case MapKind::MaxCoordinate:
                    g.rows = 1;
                    g.cols = g.elements();
                    g.steps = {{g.map == MapKind::Normalize ? StepKind::NormalizeWhole
                                : g.map == MapKind::Sign    ? StepKind::Sign
                                                            : StepKind::MaxCoordinate},
                               {StepKind::Finish}};
                    break;
            }
            choose_gram(g, schedule, options);
            choose_gram_lead(g, schedule, options);
            index[key] = kp.groups.size();
            kp.groups.push_back(std::move(g));
            it = index.find(key);
        }
        kp.groups[it->second].members.push_back(Member{leaf.index, leaf.path, leaf.scale.value(), leaf.origin});
    }
    return kp;
}

}  // namespace modc::kp
