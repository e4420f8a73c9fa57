// The parse driver: runs the declaration rule repeatedly, turns X3's expectation failures into
// located diagnostics, and recovers at the next line that begins a declaration.
#include <algorithm>
#include <cctype>

#include "grammar/grammar.hpp"

namespace modc::grammar {

namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Skips whitespace and `#` comments.
Iterator skip_blank(Iterator it, Iterator end) {
    while (it != end) {
        if (is_space(*it)) {
            ++it;
        } else if (*it == '#') {
            while (it != end && *it != '\n') ++it;
        } else {
            break;
        }
    }
    return it;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

Loc ParseState::loc(Iterator first, Iterator last) const {
    first = skip_blank(first, last);
    while (last != first && is_space(*(last - 1))) --last;
    return Loc{file_id, static_cast<std::uint32_t>(first - begin), static_cast<std::uint32_t>(last - begin)};
}

}  // namespace modc::grammar

namespace modc {

namespace {

using grammar::Iterator;

const char* const kDeclarationKeywords[] = {"def", "network", "atom", "bond", "optimizer"};

bool starts_with_keyword(Iterator it, Iterator end) {
    for (const char* word : kDeclarationKeywords) {
        Iterator p = it;
        const char* w = word;
        while (*w && p != end && *p == *w) ++p, ++w;
        if (*w == '\0' && (p == end || !grammar::is_word_char(*p))) return true;
    }
    return false;
}

// The token at `it`, for "found ..." in messages, and its length.
std::pair<std::string, std::uint32_t> token_at(Iterator it, Iterator end) {
    if (it == end) return {"end of file", 0};
    Iterator p = it;
    if (grammar::is_word_char(*p)) {
        while (p != end && grammar::is_word_char(*p) && p - it < 40) ++p;
    } else {
        ++p;
        if (p != end && ((*it == '-' && *p == '>') || ((*it == '-' || *it == '+') && *p == '='))) ++p;
    }
    std::string text(it, p);
    for (char& c : text)
        if (!std::isprint(static_cast<unsigned char>(c))) c = '?';
    return {"'" + text + "'", static_cast<std::uint32_t>(p - it)};
}

// Where the last token before `at` ends: blanks and comments are skipped backwards. (A '#'
// always starts a comment: the language has no strings.)
Iterator end_of_previous_token(Iterator at, Iterator begin) {
    Iterator back = at;
    for (;;) {
        while (back != begin && grammar::is_space(*(back - 1))) --back;
        Iterator line = back;
        while (line != begin && *(line - 1) != '\n') --line;
        Iterator hash = std::find(line, back, '#');
        if (hash == back) return back;
        back = hash;
    }
}

// Whether only blanks stand between the start of its line and `it`.
bool first_on_line(Iterator it, Iterator begin) {
    while (it != begin && (*(it - 1) == ' ' || *(it - 1) == '\t' || *(it - 1) == '\r')) --it;
    return it == begin || *(it - 1) == '\n';
}

// The first line after `it` whose first token is a declaration keyword, or the end.
Iterator next_declaration(Iterator it, Iterator end) {
    while (it != end) {
        while (it != end && *it != '\n') ++it;
        if (it == end) break;
        ++it;
        Iterator p = it;
        while (p != end && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
        if (starts_with_keyword(p, end)) return p;
    }
    return end;
}

std::string clean_which(std::string which) {
    for (char& c : which)
        if (c == '"') c = '\'';
    return which;
}

// Reports the first place where brackets nest deeper than kMaxNesting; true if the file is fine.
bool check_nesting(const std::string& text, std::uint32_t file_id, Diagnostics& diags) {
    int depth = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '#') {
            while (i < text.size() && text[i] != '\n') ++i;
        } else if (c == '(' || c == '{') {
            if (++depth > kMaxNesting) {
                auto at = static_cast<std::uint32_t>(i);
                diags.error(Loc{file_id, at, at + 1},
                            "brackets nest more than " + std::to_string(kMaxNesting) + " levels deep");
                return false;
            }
        } else if ((c == ')' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return true;
}

}  // namespace

ast::File parse(const SourceManager& sources, std::uint32_t file_id, Diagnostics& diags) {
    namespace x3 = boost::spirit::x3;
    const std::string& text = sources.file(file_id).text();
    ast::File file;
    // Text handed over whole (the API's compile from text) meets the limit on files here.
    if (text.size() > kMaxSourceBytes) {
        diags.error(Loc{file_id, 0, 0}, source_too_large_message("the source text (" + std::to_string(text.size()) + " bytes)"));
        return file;
    }
    if (!check_nesting(text, file_id, diags)) return file;

    grammar::ParseState state{text.begin(), text.end(), file_id, &file};
    auto const parser = x3::with<grammar::state_tag>(std::ref(state))[grammar::declaration_rule()];
    auto loc_at = [&](Iterator p, std::uint32_t length) {
        auto b = static_cast<std::uint32_t>(p - text.begin());
        auto e = std::min(b + std::max<std::uint32_t>(length, 1), static_cast<std::uint32_t>(text.size()));
        return Loc{file_id, b, std::max(b, e)};  // at the end of the file: empty, but still there
    };

    Iterator it = text.begin();
    const Iterator end = text.end();
    bool after_declaration = false;
    while ((it = grammar::skip_blank(it, end)) != end) {
        const Iterator start = it;
        try {
            if (x3::phrase_parse(it, end, parser, grammar::skipper)) {
                after_declaration = true;
                continue;
            }
            auto [found, length] = token_at(it, end);
            std::string message = after_declaration
                                      ? "unexpected " + found + "; expected an operator or a new declaration"
                                      : "expected a declaration ('network', 'def', 'atom', 'bond' or "
                                        "'optimizer'), found " +
                                            found;
            diags.error(loc_at(it, length), message);
        } catch (const x3::expectation_failure<Iterator>& failure) {
            Iterator at = grammar::skip_blank(failure.where(), end);
            auto [found, length] = token_at(at, end);
            // Something missing at the end of a line is shown there, as clang does, not at the
            // start of the next line.
            Iterator report = at;
            Iterator back = end_of_previous_token(at, text.begin());
            if (std::find(back, at, '\n') != at && back != text.begin()) report = back;
            diags.error(report == at ? loc_at(at, length) : loc_at(report, 1),
                        "expected " + clean_which(failure.which()) + ", found " + found);
            it = at;
        } catch (const ExprTooDeep& too_deep) {
            diags.error(too_deep.loc, "expression nests more than " + std::to_string(kMaxExprDepth) +
                                          " levels deep");
        }
        after_declaration = false;
        // Resume at the next declaration; the failure may itself sit on one (`network a =` then
        // `network b = ...` on the next line), but not on a keyword inside a line (`M as def`).
        if (it == start || !first_on_line(it, text.begin()) || !starts_with_keyword(it, end))
            it = next_declaration(it, end);
    }
    return file;
}

}  // namespace modc
