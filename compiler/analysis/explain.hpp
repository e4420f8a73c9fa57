// `modc explain`: the dual plan as a readable report, as JSON (a fixed schema other tools
// read), and the chain of factors behind one weight's target (`--why PATH`).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "compiler/analysis/dual_plan.hpp"

namespace modc {

std::string explain_text(const DualPlan& plan);
nlohmann::json explain_json(const DualPlan& plan);
// nullopt if no weight has that path.
std::optional<std::string> explain_why(const DualPlan& plan, const std::string& path);

}  // namespace modc
