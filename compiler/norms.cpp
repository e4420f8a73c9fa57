#include "norms.hpp"

namespace modc {

const std::vector<NormInfo>& known_norms() {
    static const std::vector<NormInfo> norms = {
        {"l2", "l2", 1},
        {"rms", "RMS", 1},
        {"linf", "l_inf", 1},
        {"l1", "l1", 1},
        {"frobenius", "Frobenius", 2},
        {"spectral", "l2 -> l2", 2},
        {"rms_to_rms", "RMS -> RMS", 2},
        {"l1_to_rms", "l1 -> RMS", 2},
        {"rms_to_linf", "RMS -> l_inf", 2},
        {"l1_to_linf", "l1 -> l_inf", 2},
        {"conv_rms_to_rms", "k^2 max over positions of RMS -> RMS", 4},
    };
    return norms;
}

const NormInfo* find_norm(const std::string& name) {
    for (const auto& n : known_norms())
        if (n.name == name) return &n;
    return nullptr;
}

}  // namespace modc
