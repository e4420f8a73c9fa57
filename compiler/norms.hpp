// The operator norms modc knows, by the name used in `norm = ...`, each with its duality map
// (math.md section 2): the unit-norm direction a gradient most favours in that norm.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "surd.hpp"

namespace modc {

// What a duality map does to a gradient, before its scale factor.
enum class MapKind {
    Normalize,            // g / ||g||_2 (or ||G||_F)
    Sign,                 // sign(g), sign(0) = 0
    MaxCoordinate,        // sign(g_i) e_i at the largest |g_i| (the l1 norm's dual)
    Orthogonalize,        // U V^T of G = U S V^T
    NormalizeColumns,     // each column / its l2 norm
    NormalizeRows,        // each row / its l2 norm
    OrthogonalizeSlices,  // U V^T of each kernel position G[:, :, i, j]
};
const char* to_string(MapKind kind);
// The maps computed by orthogonalisation (Newton-Schulz or the SVD), as against closed forms.
inline bool orthogonalizes(MapKind kind) { return kind == MapKind::Orthogonalize || kind == MapKind::OrthogonalizeSlices; }

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
