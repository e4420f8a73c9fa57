// The dual plan: the derivation's answer, independent of any hardware. For each weight its
// norm, duality map and exact target norm t; for the network its modular norm.
#pragma once
#include <string>
#include <vector>

#include "compiler/frontend/norms.hpp"
#include "support/rational.hpp"
#include "support/source.hpp"
#include "support/surd.hpp"

namespace modc {

// One factor in the chain that produced a leaf's target (for `explain --why`).
struct WhyStep {
    std::string node;       // "composition", "tuple", with its position
    Loc loc;
    Rational child_mass;    // mass of the branch holding the leaf
    Rational total_mass;    // mass of the whole node
    Rational downstream;    // product of sensitivities of what runs after the branch (1 in tuples)
    Rational factor;        // child_mass / (total_mass * downstream)
    Rational target_after;  // t after this step
};

struct DualLeaf {
    int index = 0;
    std::string path;
    std::string atom;
    std::vector<std::int64_t> shape;
    const NormInfo* norm = nullptr;
    Rational mass;
    Rational target;  // t: the update is t * dualize_norm(G)
    Surd scale;       // t times the map's own factor: what multiplies the map's raw output
    Loc loc;
    std::string origin;  // "file.mod:12": where the atom was written, for generated code
    std::vector<WhyStep> why;
};

struct DualPlan {
    std::string network;
    Rational mass;
    Rational sensitivity;
    std::string norm;  // the modular norm of the whole network, as a formula
    std::vector<DualLeaf> leaves;
};

}  // namespace modc
