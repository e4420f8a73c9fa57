// The gradient update type check of the seeds, over `optimizer` blocks. Every value is a
// scalar, primal (weights, updates, dualize(...)) or dual (gradients and linear combinations
// of them). `W -= lr * grad` adds a dual value to primal weights: ill-typed. `W -= lr *
// dualize(grad)` is well-typed. Well-typed steps that are almost surely mistakes get warnings:
// gradient ascent, weights overwritten or never given dualize(...), state that nothing reads.
#pragma once
#include "grammar/ast.hpp"
#include "support/diagnostics.hpp"

namespace modc {

// Checks every optimizer in the file; false if any is ill-typed.
bool typecheck_optimizers(const ast::File& file, Diagnostics& diags);

}  // namespace modc
