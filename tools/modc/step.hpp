// `modc step`: one optimizer step on tensor files (docs/optimizers.md).
#pragma once
#include <string>
#include <vector>

#include "compiler/analysis/dual_plan.hpp"
#include "library/modc.hpp"

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

}  // namespace modc
