// Feature-size inference: unifies each module's output with the input of the module after it
// (and the inputs of a tuple's children with one another), so that layers that do not fit
// are reported with both sides named. Fills Node::input and Node::output.
#pragma once
#include "support/diagnostics.hpp"
#include "compiler/frontend/module_ir.hpp"

namespace modc {

// Returns false (with diagnostics) if two sizes conflict.
bool infer_features(ir::Network& network, Diagnostics& diags);

}  // namespace modc
