// Readable, deterministic dumps for `--emit ast`, `--emit ir` and `modc graph`; the golden tests
// hold their output. Locations print as line:col so that goldens do not depend on paths.
#pragma once
#include <string>

#include "grammar/ast.hpp"
#include "compiler/frontend/module_ir.hpp"

namespace modc {

std::string print_ast(const ast::File& file, const SourceManager& sources);
std::string print_ir(const ir::Network& network, const SourceManager& sources);
std::string print_dot(const ir::Network& network);

}  // namespace modc
