// "did you mean ...?" for unknown names.
#pragma once
#include <string>
#include <vector>

namespace modc {

// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo.
std::string closest_match(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace modc
