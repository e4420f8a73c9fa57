#include "compiler/frontend/norms.hpp"

namespace modc {

namespace {

Rational r(std::int64_t n) { return Rational(n); }

Surd one(const std::vector<std::int64_t>&) { return Surd{}; }
// Vector RMS: sqrt(d) g / ||g||_2.
Surd sqrt_d(const std::vector<std::int64_t>& s) { return Surd::sqrt_of(r(s[0])); }
// RMS -> RMS: sqrt(dout/din) U V^T.
Surd sqrt_out_over_in(const std::vector<std::int64_t>& s) { return Surd::sqrt_of(r(s[0]) / r(s[1])); }
// l1 -> RMS: each column to unit RMS norm, i.e. sqrt(dout) col / ||col||_2.
Surd sqrt_out(const std::vector<std::int64_t>& s) { return Surd::sqrt_of(r(s[0])); }
// RMS -> l_inf: each row row / (sqrt(din) ||row||_2).
Surd inv_sqrt_in(const std::vector<std::int64_t>& s) { return Surd::sqrt_of(1 / r(s[1])); }
// Conv2D: (1/k^2) sqrt(dout/din) per kernel position.
Surd conv(const std::vector<std::int64_t>& s) { return Surd::sqrt_of(r(s[0]) / r(s[1])) * (1 / r(s[2] * s[3])); }

}  // namespace

const std::vector<NormInfo>& known_norms() {
    static const std::vector<NormInfo> norms = {
        {"l2", "l2", 1, MapKind::Normalize, one},
        {"rms", "RMS", 1, MapKind::Normalize, sqrt_d},
        {"linf", "l_inf", 1, MapKind::Sign, one},
        {"l1", "l1", 1, MapKind::MaxCoordinate, one},
        {"frobenius", "Frobenius", 2, MapKind::Normalize, one},
        {"spectral", "l2 -> l2", 2, MapKind::Orthogonalize, one},
        {"rms_to_rms", "RMS -> RMS", 2, MapKind::Orthogonalize, sqrt_out_over_in},
        {"l1_to_rms", "l1 -> RMS", 2, MapKind::NormalizeColumns, sqrt_out},
        {"rms_to_linf", "RMS -> l_inf", 2, MapKind::NormalizeRows, inv_sqrt_in},
        {"l1_to_linf", "l1 -> l_inf", 2, MapKind::Sign, one},
        {"conv_rms_to_rms", "conv RMS -> RMS", 4, MapKind::OrthogonalizeSlices, conv},
    };
    return norms;
}

const NormInfo* find_norm(const std::string& name) {
    for (const auto& n : known_norms())
        if (n.name == name) return &n;
    return nullptr;
}

}  // namespace modc
