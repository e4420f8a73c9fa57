// Gives every weight (atom) its index in weight order and a readable path unique in the network.
//
// Weight order: a depth-first walk in which a composition's children come in run order (input
// side first) and a tuple's in written order.
//
// Paths: a node is *named* if it is an atom or carries a label (the def it was made by, or an
// `as` name). A named node's path is its parent's path, a dot, and its segment: the label, or
// for an unlabelled atom its lower-cased atom name. Copies made by a labelled power `M ^ n` get
// the segments [0] .. [n-1]. Where siblings share a segment they are numbered in weight order
// (`linear[0]`, `linear[1]`); an unlabelled atom that is the only weight under its parent takes
// the parent's path. Example: `blocks[2].attention.q`.
#pragma once
#include "compiler/frontend/module_ir.hpp"

namespace modc {

void name_leaves(ir::Network& network);

}  // namespace modc
