// compiler/analysis/lower_step: a type-checked `optimizer` block -> its step plan (program/step_plan.hpp).
// Run it only on blocks typecheck_optimizers() accepted: what the type check accepts is exactly
// what runs. User errors it can still find (a default that is not a number) are diagnostics.
#pragma once
#include <optional>

#include "grammar/ast.hpp"
#include "program/step_plan.hpp"
#include "support/diagnostics.hpp"

namespace modc {

std::optional<step::StepPlan> lower_step(const ast::Optimizer& optimizer, Diagnostics& diags);

}  // namespace modc
