// `modc dualize`: the duality map applied to gradients in a tensor file, updates written to
// another (runtime/tensor_io.hpp: safetensors or a directory of .npy files).
#pragma once
#include <string>

#include "compiler/analysis/dual_plan.hpp"
#include "library/modc.hpp"

namespace modc {

struct DualizeArgs {
    std::string file, text;      // the .mod file and its text
    std::string input, output;   // gradients in, updates out
    CompileOptions options;      // dtype comes from the gradients
};

// Reads and checks the gradients before anything is written; 0, or 1 after saying what is
// wrong. The updates are written as the run completes them (rt::TensorFileWriter), so that
// neither all gradients nor all updates need to be resident at once. MODC_PHASE_TIMES=1 in the
// environment: a line on stderr with the seconds of each phase (read, check, compile, run, of
// which writing: summed over the run's threads, commit: sync and rename), for
// docs/performance.md's I/O share.
int run_dualize(const DualizeArgs& args, const DualPlan& plan);

}  // namespace modc
