#include "support/diagnostics.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

namespace modc {

Diagnostic& Diagnostics::add(Severity s, Loc loc, std::string message) {
    // The same error reached twice (e.g. through two uses of one def) is reported once.
    if (!seen_.emplace(s, loc.file, loc.begin, message).second) {
        discarded_ = Diagnostic{};
        return discarded_;
    }
    if (s == Severity::Error) ++error_count_;
    if (s == Severity::Warning) ++warning_count_;
    diags_.push_back(Diagnostic{s, loc, std::move(message), {}});
    return diags_.back();
}

Diagnostic& Diagnostics::error(Loc loc, std::string message) { return add(Severity::Error, loc, std::move(message)); }
Diagnostic& Diagnostics::warning(Loc loc, std::string message) { return add(Severity::Warning, loc, std::move(message)); }

void Diagnostics::note(Diagnostic& d, Loc loc, std::string message) {
    d.notes.push_back(Diagnostic{Severity::Note, loc, std::move(message), {}});
}

namespace {

const char* label(Severity s) {
    switch (s) {
        case Severity::Error: return "error";
        case Severity::Warning: return "warning";
        case Severity::Note: return "note";
    }
    return "error";
}

const char* color_of(Severity s) {
    switch (s) {
        case Severity::Error: return "\033[1;31m";
        case Severity::Warning: return "\033[1;35m";
        case Severity::Note: return "\033[1;36m";
    }
    return "";
}

// Longer source lines are cut to this many bytes around the caret.
constexpr std::size_t kMaxLineShown = 200;

// Control bytes (ESC, BEL, NUL, ...) never reach the terminal raw: each is shown as <U+001B>,
// as clang does. Tabs stay (the caret line keeps them); newlines stay in messages.
bool is_control(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

std::string escape_byte(unsigned char c) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "<U+%04X>", c);
    return buf;
}

std::string escaped(std::string_view text, bool keep_newlines) {
    std::string out;
    for (unsigned char c : text) out += is_control(c) && !(keep_newlines && c == '\n') ? escape_byte(c) : std::string(1, static_cast<char>(c));
    return out;
}

void render_one(std::ostream& out, const SourceManager& sm, const Diagnostic& d, bool color) {
    const char* bold = color ? "\033[1m" : "";
    const char* reset = color ? "\033[0m" : "";
    if (d.loc.valid()) {
        out << bold << sm.describe(d.loc) << ": " << reset;
    } else {
        out << bold << "modc: " << reset;
    }
    out << (color ? color_of(d.severity) : "") << label(d.severity) << ": " << reset << bold
        << escaped(d.message, true) << reset << '\n';
    if (!d.loc.valid()) return;
    const SourceFile& f = sm.file(d.loc.file);
    std::string_view whole = f.line_view(d.loc.begin);
    std::size_t start = f.line_col(d.loc.begin).col - 1;  // the caret's byte in the line
    std::string line;
    if (whole.size() <= kMaxLineShown) {
        line = whole;
    } else {
        // A long line is shown as a window around the caret, so that many errors on one huge
        // line cost output in proportion to their number, not to the line's length squared.
        std::size_t from = start > kMaxLineShown / 2 ? std::min(start, whole.size()) - kMaxLineShown / 2 : 0;
        std::size_t to = std::min(whole.size(), from + kMaxLineShown);
        std::string head = from > 0 ? "..." : "";
        line = head + std::string(whole.substr(from, to - from)) + (to < whole.size() ? "..." : "");
        start = start - from + head.size();
    }
    // The line as shown (control bytes escaped), and where each byte of it begins there.
    std::string shown;
    std::vector<std::size_t> column;
    for (unsigned char c : line) {
        column.push_back(shown.size());
        shown += is_control(c) ? escape_byte(c) : std::string(1, static_cast<char>(c));
    }
    column.push_back(shown.size());
    out << shown << '\n';
    // Keep tabs so the caret lines up under tab-indented source.
    std::size_t caret = column[std::min(start, line.size())];
    std::string pad;
    for (std::size_t i = 0; i < caret; ++i) pad += (shown[i] == '\t' ? '\t' : ' ');
    std::size_t width = 1;
    if (d.loc.end > d.loc.begin && start < line.size()) {
        std::size_t end = std::min(line.size(), start + (d.loc.end - d.loc.begin));
        width = std::max<std::size_t>(1, column[end] - caret);
    }
    out << pad << (color ? "\033[1;32m" : "") << '^' << std::string(width - 1, '~') << reset << '\n';
}

}  // namespace

void Diagnostics::render(std::ostream& out, bool color) const {
    // In source order, as a reader goes through the file; notes stay with their diagnostic.
    std::vector<const Diagnostic*> order;
    for (const auto& d : diags_) order.push_back(&d);
    std::stable_sort(order.begin(), order.end(), [](const Diagnostic* a, const Diagnostic* b) {
        return std::make_pair(a->loc.file, a->loc.begin) < std::make_pair(b->loc.file, b->loc.begin);
    });
    // Rendered into one buffer and written at once: std::cerr would flush every piece.
    std::ostringstream text;
    for (const Diagnostic* dp : order) {
        const Diagnostic& d = *dp;
        render_one(text, *sources_, d, color);
        for (const auto& n : d.notes) render_one(text, *sources_, n, color);
    }
    out << text.str();
}

std::string Diagnostics::render() const {
    std::ostringstream s;
    render(s, false);
    return s.str();
}

}  // namespace modc
