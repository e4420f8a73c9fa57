// User-facing diagnostics, collected rather than thrown, and rendered as clang does:
//   file:line:col: error: message
//   <source line>
//        ^~~~~
// Internal errors (modc itself is wrong) are a separate exception type, never a diagnostic.
#pragma once
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "support/source.hpp"

namespace modc {

enum class Severity { Error, Warning, Note };

struct Diagnostic {
    Severity severity = Severity::Error;
    Loc loc;
    std::string message;
    std::vector<Diagnostic> notes;  // attached "note:" lines, printed after the main one
};

class Diagnostics {
public:
    explicit Diagnostics(const SourceManager& sources) : sources_(&sources) {}

    // Records a diagnostic and returns it so callers can attach notes.
    Diagnostic& error(Loc loc, std::string message);
    Diagnostic& warning(Loc loc, std::string message);
    static void note(Diagnostic& d, Loc loc, std::string message);

    bool has_errors() const { return error_count_ > 0; }
    std::size_t error_count() const { return error_count_; }
    std::size_t warning_count() const { return warning_count_; }
    const std::vector<Diagnostic>& all() const { return diags_; }

    void render(std::ostream& out, bool color = false) const;
    std::string render() const;
    const SourceManager& sources() const { return *sources_; }

private:
    Diagnostic& add(Severity s, Loc loc, std::string message);
    const SourceManager* sources_;
    std::vector<Diagnostic> diags_;
    std::set<std::tuple<Severity, std::uint32_t, std::uint32_t, std::string>> seen_;  // to drop duplicates
    Diagnostic discarded_;  // target for duplicates, which are dropped
    std::size_t error_count_ = 0;
    std::size_t warning_count_ = 0;
};

// modc itself is wrong: a broken invariant, not bad input.
struct InternalError : std::logic_error {
    using std::logic_error::logic_error;
};

#define MODC_ASSERT(cond, msg)                                                                  \
    do {                                                                                        \
        if (!(cond))                                                                            \
            throw ::modc::InternalError(std::string("internal error: ") + (msg) + " [" #cond \
                                        "] at " __FILE__ ":" + std::to_string(__LINE__));      \
    } while (0)

}  // namespace modc
