// `modc step`: one optimizer step on tensor files (docs/optimizers.md).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "compiler/analysis/dual_plan.hpp"
#include "grammar/ast.hpp"
#include "library/modc.hpp"
#include "program/cpu_program.hpp"
#include "support/diagnostics.hpp"

namespace modc {

struct StepArgs {
    std::string file, text;           // the .mod file and its text
    std::string weights, grads;       // tensor files, by weight path
    std::string state;                // optional: STATE/PATH tensors; without it state starts at zero
    std::string out, out_state;       // the weights after the step; the state after it (optional)
    std::vector<std::string> hypers;  // NAME=VALUE
    long long step = 1;               // the step count of this step (1 on the first)
    OptimizerOptions options;         // dtype comes from the tensors
};

// Reads and checks every input before anything is written; 0, or 1 after saying what is wrong.
int run_step(const StepArgs& args, const DualPlan& plan);

// `modc emit --emit step-plan|step|step-cuda` of a block: each rule's plan (the block's, without
// rules) over the weights it selects, as text; nullopt when lowering reported errors to diags.
std::optional<std::string> emit_step(const ast::Optimizer& block, const DualPlan& plan, const std::string& emit,
                                     ElementType type, Diagnostics& diags);

}  // namespace modc
