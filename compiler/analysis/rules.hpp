// compiler/analysis/rules: an optimizer's per-weight rules (`for Linear { ... }`, `for head,
// Embed { ... }`): the flat block each rule is, and which weights it selects. A selector names
// an atom (`Linear`, `Embed`, `Gain`, a user's atom) or is a pattern over weight paths (`head`,
// `blocks[*].attention.*`, `*` matching any run of characters); each weight runs the first rule
// that selects it (docs/optimizers.md, "Rules").
#pragma once
#include <string>
#include <vector>

#include "compiler/analysis/dual_plan.hpp"
#include "grammar/ast.hpp"
#include "support/diagnostics.hpp"

namespace modc {

// One flat optimizer per rule, named "NAME for SELECTORS" and located at the rule, with the
// block's parameters; the block itself when it has no rules.
std::vector<ast::Optimizer> rule_blocks(const ast::Optimizer& optimizer);

// The rule each weight runs (its index in rule_blocks), or -1 where no rule selects it.
std::vector<int> bind_rules(const ast::Optimizer& optimizer, const std::vector<DualLeaf>& leaves);

// Reports, located, a rule that selects no weight of the network and a weight no rule selects;
// false if there was either.
bool check_rules(const ast::Optimizer& optimizer, const DualPlan& plan, Diagnostics& diags);

}  // namespace modc
