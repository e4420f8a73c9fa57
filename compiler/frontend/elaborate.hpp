// Elaboration: AST -> module IR. Defs are expanded, numbers evaluated exactly, primitives
// instantiated from their declarations (the prelude's and the file's), masses tared.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "grammar/ast.hpp"
#include "support/diagnostics.hpp"
#include "compiler/frontend/module_ir.hpp"

namespace modc {

struct ElaborateOptions {
    std::map<std::string, Rational> overrides;  // network parameters set on the command line
    std::string only_network;                   // elaborate just this one (empty: all)
};

// Limits that keep any input from costing unbounded time or memory.
inline constexpr std::size_t kMaxModules = 1000000;
inline constexpr int kMaxCallDepth = 64;
// The work budget of elaboration, for a whole file: each expression evaluated, each module
// built or copied, each bit of exact arithmetic and each byte of a diagnostic costs steps, also
// where the work ends in an error. A network of a million modules takes 3 to 25 million steps;
// the whole budget runs out in a few seconds whatever the input.
inline constexpr std::size_t kMaxElaborationSteps = 32000000;

// The networks of `file`, with the primitives of `prelude` in scope. Errors go to `diags`; a
// network with errors is left out of the result. Feature sizes and leaf names are not yet
// assigned: see infer_features and name_leaves.
std::vector<ir::Network> elaborate(const ast::File& prelude, const ast::File& file, Diagnostics& diags,
                                   const ElaborateOptions& options = {});

}  // namespace modc
