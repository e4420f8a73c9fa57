#include "support/suggest.hpp"

#include <algorithm>
#include <cctype>

namespace modc {

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
    // Damerau-Levenshtein in half-typos: insert, delete, substitute and swap cost 2; a change
    // of case alone costs nothing, so that "relu" finds "ReLU".
    auto fold = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = 2 * i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = 2 * j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t subst = fold(a[i - 1]) == fold(b[j - 1]) ? 0 : 2;
            d[i][j] = std::min({d[i - 1][j] + 2, d[i][j - 1] + 2, d[i - 1][j - 1] + subst});
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) && fold(a[i - 2]) == fold(b[j - 1]))
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 2);
        }
    return d[a.size()][b.size()];
}

}  // namespace

std::string closest_match(const std::string& name, const std::vector<std::string>& candidates) {
    // The distance table costs |name| x |candidate|: no suggestions for absurdly long names.
    constexpr std::size_t kMaxLength = 64;
    if (name.size() > kMaxLength) return {};
    std::string best;
    std::size_t best_distance = 0;
    for (const auto& c : candidates) {
        if (c.size() > kMaxLength) continue;
        std::size_t d = edit_distance(name, c);  // in half-typos
        if (best.empty() || d < best_distance) {
            best = c;
            best_distance = d;
        }
    }
    // Allow about one typo per three characters, and at least one.
    std::size_t allowed = 2 * std::max<std::size_t>(1, name.size() / 3);
    if (best.empty() || best_distance > allowed || best == name) return {};
    return best;
}

}  // namespace modc
