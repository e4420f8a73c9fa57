#include "suggest.hpp"

#include <algorithm>
#include <cctype>

namespace modc {

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            // A change of case only costs half a typo, so "relu" finds "ReLU".
            bool same = a[i - 1] == b[j - 1];
            bool same_folded = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                               std::tolower(static_cast<unsigned char>(b[j - 1]));
            std::size_t subst = same ? 0 : (same_folded ? 0 : 2);
            cur[j] = std::min({prev[j] + 2, cur[j - 1] + 2, prev[j - 1] + subst});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

}  // namespace

std::string closest_match(const std::string& name, const std::vector<std::string>& candidates) {
    std::string best;
    std::size_t best_distance = 0;
    for (const auto& c : candidates) {
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
