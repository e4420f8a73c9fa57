// The operator norms modc knows, by the name used in `norm = ...`.
#pragma once
#include <string>
#include <vector>

namespace modc {

struct NormInfo {
    std::string name;
    std::string title;  // e.g. "RMS -> RMS"
    int rank;           // the weight rank it applies to: 1 vector, 2 matrix, 4 conv kernel
};

const std::vector<NormInfo>& known_norms();
const NormInfo* find_norm(const std::string& name);

}  // namespace modc
