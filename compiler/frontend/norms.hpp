// The operator norms modc knows, by the name used in `norm = ...`, each with its duality map
// (math.md section 2): the unit-norm direction a gradient most favours in that norm.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "program/map_kind.hpp"
#include "support/surd.hpp"

namespace modc {

struct NormInfo {
    std::string name;   // as written in .mod files: "rms_to_rms"
    std::string title;  // "RMS -> RMS"
    int rank;           // the weight rank it applies to: 1 vector, 2 matrix, 4 conv kernel
    MapKind map;
    // The factor that turns the map's output into a unit vector of this norm (sqrt(dout/din)
    // for RMS -> RMS), for a weight of the given shape.
    Surd (*factor)(const std::vector<std::int64_t>& shape);
};

const std::vector<NormInfo>& known_norms();
const NormInfo* find_norm(const std::string& name);

}  // namespace modc
