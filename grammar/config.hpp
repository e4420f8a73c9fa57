// Types shared by the grammar's definition and its instantiation (as in X3's rexpr_full example).
#pragma once
#include <boost/spirit/home/x3.hpp>
#include <functional>
#include <string>

#include "grammar/ast.hpp"

namespace modc::grammar {
namespace x3 = boost::spirit::x3;

using Iterator = std::string::const_iterator;

// What the semantic actions need besides their attributes: where the text starts (to turn
// iterators into Locs) and the file to add finished declarations to.
struct ParseState {
    Iterator begin;
    Iterator end;
    std::uint32_t file_id;
    ast::File* file;

    Loc loc(Iterator first, Iterator last) const;
};

struct state_tag;

// ASCII character classes that take any byte. X3's space, alpha, alnum and digit call
// std::isspace and its kin with a plain (signed) char, which is undefined from 0x80 on (UTF-8,
// garbage) and fails an assertion in Boost: found by tests/fuzz. Sets of characters compare
// bytes instead.
inline auto const space = x3::char_(" \t\n\v\f\r");
inline auto const digit = x3::char_("0-9");
inline auto const alpha = x3::char_("a-zA-Z");
inline auto const alnum = x3::char_("a-zA-Z0-9");

// Whitespace and `#` comments separate tokens.
struct skipper_tag;
inline auto const skipper = space | x3::lexeme['#' >> *(x3::char_ - x3::eol) >> (x3::eol | x3::eoi)];
using Skipper = std::remove_const_t<decltype(skipper)>;

using PhraseContext = x3::phrase_parse_context<Skipper>::type;
using Context = x3::context<state_tag, std::reference_wrapper<ParseState>, PhraseContext>;

}  // namespace modc::grammar
