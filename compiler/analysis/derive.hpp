// The derivation (math.md section 4): passes a target norm t down the module tree, from 1 at
// the root, through compositions (t_i = t mu_i / (mu nu_after)) and tuples (t_i = t mu_i / mu),
// in exact arithmetic. A sensitivity of 0 after a weight with mass is a located error.
#pragma once
#include <optional>

#include "support/diagnostics.hpp"
#include "compiler/analysis/dual_plan.hpp"
#include "compiler/frontend/module_ir.hpp"

namespace modc {

std::optional<DualPlan> derive(const ir::Network& network, Diagnostics& diags);

}  // namespace modc
