// The .mod grammar (Boost.Spirit X3). The entry point parses a whole file with recovery:
// a syntax error is reported and parsing resumes at the next line that starts a declaration.
#pragma once
#include "support/diagnostics.hpp"
#include "grammar/ast.hpp"
#include "grammar/config.hpp"

namespace modc::grammar {

// One top-level declaration (def, network, atom, bond, optimizer), added to the state's file.
struct declaration_class;
using declaration_type = x3::rule<declaration_class>;
BOOST_SPIRIT_DECLARE(declaration_type)
declaration_type const& declaration_rule();

}  // namespace modc::grammar

namespace modc {

// Nesting deeper than this (parentheses, braces) is refused before parsing, so that no input
// can exhaust the parser's stack.
inline constexpr int kMaxNesting = 200;

// Expression trees deeper than this are refused while parsing: prefix minus signs and `^`
// chains nest without brackets (`- - - x`, `2^2^2`), and every later pass recurses over the tree.
inline constexpr int kMaxExprDepth = 1000;

// Thrown by the grammar's actions when a tree would grow deeper than kMaxExprDepth.
struct ExprTooDeep {
    Loc loc;
};

ast::File parse(const SourceManager& sources, std::uint32_t file_id, Diagnostics& diags);

}  // namespace modc
