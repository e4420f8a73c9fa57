// Instantiates the grammar for the one iterator and context modc parses with.
#include "grammar/grammar_def.hpp"

namespace modc::grammar {
BOOST_SPIRIT_INSTANTIATE(declaration_type, Iterator, Context)
declaration_type const& declaration_rule() { return declaration; }
}  // namespace modc::grammar
