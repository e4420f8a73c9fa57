// The duality maps the compiled program computes, by kind: the one piece of the norms'
// vocabulary (compiler/frontend/norms.hpp) that the runtime needs to run a kernel plan.
#pragma once

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

}  // namespace modc
