// program/kernel_plan: what every consumer of a kernel plan derives from it alike (the order of
// a Gram group's steps, flop counts, the `--emit plan` listing).
#include "program/kernel_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace modc {

const char* to_string(MapKind kind) {
    switch (kind) {
        case MapKind::Normalize: return "normalize";
        case MapKind::Sign: return "sign";
        case MapKind::MaxCoordinate: return "max_coordinate";
        case MapKind::Orthogonalize: return "orthogonalize";
        case MapKind::NormalizeColumns: return "normalize_columns";
        case MapKind::NormalizeRows: return "normalize_rows";
        case MapKind::OrthogonalizeSlices: return "orthogonalize_slices";
    }
    return "?";
}

}  // namespace modc

namespace modc::kp {

const char* to_string(Precision precision) {
    switch (precision) {
        case Precision::F32: return "f32";
        case Precision::TF32: return "tf32";
        case Precision::BF16: return "bf16";
    }
    return "?";
}

const char* to_string(StepKind kind) {
    switch (kind) {
        case StepKind::Normalize: return "normalize";
        case StepKind::NewtonSchulz: return "newton_schulz";
        case StepKind::IterateToConvergence: return "newton_schulz_until_converged";
        case StepKind::SvdPolar: return "svd_polar";
        case StepKind::NormalizeColumns: return "normalize_columns";
        case StepKind::NormalizeRows: return "normalize_rows";
        case StepKind::NormalizeWhole: return "normalize_whole";
        case StepKind::Sign: return "sign";
        case StepKind::MaxCoordinate: return "max_coordinate";
        case StepKind::Finish: return "finish";
    }
    return "?";
}

std::int64_t Group::elements() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

double newton_schulz_flops(double m, double n, int steps, bool gram, int restart, bool restart_every) {
    if (steps <= 0) return 0;
    if (!gram) return steps * (3 * m * m * n + m * m * m);
    double runs = restart <= 0 ? 1 : restart_every ? 1 + (steps - 1 + restart - 1) / restart : 2;
    return runs * 3 * m * m * n + (6.0 * steps - 5 * runs) * m * m * m;
}

double gram_lead_flops(double m, double n, int steps, int lead) {
    if (lead <= 0 || steps < lead) return newton_schulz_flops(m, n, steps, false);
    return 3 * m * m * n + (4.0 * lead - 3) * m * m * m + newton_schulz_flops(m, n, steps - lead, false);
}

double newton_schulz_flops(const Group& g, int steps) {
    auto m = static_cast<double>(g.small()), n = static_cast<double>(g.large());
    if (g.gram_lead > 0) return gram_lead_flops(m, n, steps, g.gram_lead);
    return newton_schulz_flops(m, n, steps, g.gram, g.gram_restart, g.gram_restart_every);
}

double gram_lead_alpha(const Group& group) {
    double alpha = 1;
    int steps = 0;
    for (const auto& s : group.steps)
        if (s.kind == StepKind::NewtonSchulz && steps++ < group.gram_lead) alpha *= s.coeffs.a;
    return alpha;
}

std::vector<GramStep> gram_steps(const Group& group) {
    std::vector<GramStep> out;
    for (std::size_t s = 0; s < group.steps.size(); ++s)
        if (group.steps[s].kind == StepKind::NewtonSchulz) out.push_back({s, false, false});
    const auto restart = static_cast<std::size_t>(group.gram_restart);
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (group.gram_restart_every && restart > 0) {  // runs of 1, restart, restart, ... steps
            out[i].first = i == 0 || (i - 1) % restart == 0;
            out[i].last = i + 1 == out.size() || i == 0 || i % restart == 0;
        } else {
            out[i].first = i == 0 || i == restart;
            out[i].last = i + 1 == out.size() || i + 1 == restart;
        }
    }
    return out;
}

int newton_schulz_steps(const Group& group) {
    int steps = 0;
    for (const auto& s : group.steps) {
        if (s.kind == StepKind::NewtonSchulz) steps += 1;
        if (s.kind == StepKind::IterateToConvergence) steps += 10;
    }
    return steps;
}

double matrix_cost(const Group& g) {
    if (!orthogonalizes(g.map)) return 3.0 * static_cast<double>(g.elements());
    bool svd = std::any_of(g.steps.begin(), g.steps.end(), [](const Step& s) { return s.kind == StepKind::SvdPolar; });
    return newton_schulz_flops(g, svd ? 10 : newton_schulz_steps(g));
}

double member_cost(const Group& g) {
    return orthogonalizes(g.map) ? static_cast<double>(g.slices) * matrix_cost(g) : matrix_cost(g);
}

double flops(const KernelPlan& plan) {
    double total = 0;
    for (const auto& g : plan.groups) {
        double matrices = static_cast<double>(g.members.size() * g.slices);
        total += matrices * newton_schulz_flops(g, newton_schulz_steps(g));
        total += 3.0 * static_cast<double>(g.elements()) * static_cast<double>(g.members.size());
    }
    return total;
}

std::string print(const KernelPlan& plan) {
    std::ostringstream out;
    char buf[256];
    out << "kernel plan for network " << plan.network << ", schedule " << plan.schedule << ": " << plan.groups.size()
        << " groups, " << plan.leaf_count << " weights";
    if (plan.precision != Precision::F32) out << ", matmul inputs in " << to_string(plan.precision);
    out << "\n";
    for (std::size_t i = 0; i < plan.groups.size(); ++i) {
        const auto& g = plan.groups[i];
        std::string shape;
        for (auto d : g.shape) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
        out << "group " << i << ": " << modc::to_string(g.map) << " of " << g.members.size() << " x [" << shape << "]";
        if (g.slices > 1) out << ", " << g.slices << " slices of " << g.rows << " x " << g.cols << " each";
        if (g.transpose) out << ", transposed to " << g.cols << " x " << g.rows;
        if (!g.schedule.empty()) out << ", schedule " << g.schedule;
        if (g.gram) out << ", Gram Newton-Schulz on " << g.small() << " x " << g.small();
        if (g.gram_restart > 0)
            out << (g.gram_restart_every ? ", restarted after step 1 and then every " : ", restarted after step ")
                << g.gram_restart << (g.gram_restart_every ? " steps" : "");
        if (g.gram_lead > 0)
            out << ", the first " << g.gram_lead << " steps as one Gram run on " << g.small() << " x " << g.small();
        out << "\n";
        for (const auto& m : g.members) {
            std::snprintf(buf, sizeof buf, "  weight #%d %s scale %.9g\n", m.leaf, m.path.c_str(), m.scale);
            out << buf;
        }
        for (const auto& s : g.steps) {
            out << "  " << to_string(s.kind);
            if (s.kind == StepKind::Normalize) {
                std::snprintf(buf, sizeof buf, " by ||G||_F * %.17g + %.17g", s.norm_scale, s.eps);
                out << buf;
            }
            if (s.kind == StepKind::NewtonSchulz || s.kind == StepKind::IterateToConvergence) {
                std::snprintf(buf, sizeof buf, " (%.17g, %.17g, %.17g)", s.coeffs.a, s.coeffs.b, s.coeffs.c);
                out << buf;
            }
            if (s.kind == StepKind::IterateToConvergence) {
                std::snprintf(buf, sizeof buf, " until ||dX||_F <= %.3g, at most %d steps", s.tolerance, s.max_steps);
                out << buf;
            }
            out << "\n";
        }
    }
    return out.str();
}

}  // namespace modc::kp
