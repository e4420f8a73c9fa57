#include "compiler/analysis/explain.hpp"

#include <fmt/format.h>

#include "compiler/frontend/module_ir.hpp"

namespace modc {

using ir::shape_text;

namespace {


std::string decimal(double v) { return fmt::format("{:.6g}", v); }

}  // namespace

std::string explain_text(const DualPlan& plan) {
    std::string out;
    out += fmt::format("network {}\n", plan.network);
    out += fmt::format("  mass         {}\n", to_string(plan.mass));
    out += fmt::format("  sensitivity  {}\n", to_string(plan.sensitivity));
    out += fmt::format("  modular norm {}\n", plan.norm);
    out += fmt::format("  update       each weight W gets t * dualize(G), t its target below\n\n");
    std::size_t path_width = 4;
    std::size_t shape_width = 5;
    for (const auto& l : plan.leaves) {
        path_width = std::max(path_width, l.path.size());
        shape_width = std::max(shape_width, shape_text(l.shape).size());
    }
    out += fmt::format("  {:>3}  {:<{}}  {:<{}}  {:<16}  {:<20}  {:<16}  {}\n", "#", "path", path_width, "shape",
                       shape_width, "norm", "map", "target t", "scale");
    for (const auto& l : plan.leaves) {
        std::string target = to_string(l.target) + " = " + decimal(to_double(l.target));
        if (is_integer(l.target)) target = to_string(l.target);
        std::string scale = l.scale.str();
        std::string scale_value = decimal(l.scale.value());
        if (scale != scale_value) scale += " = " + scale_value;
        out += fmt::format("  {:>3}  {:<{}}  {:<{}}  {:<16}  {:<20}  {:<16}  {}\n", l.index, l.path, path_width,
                           shape_text(l.shape), shape_width, l.norm->title, to_string(l.norm->map), target, scale);
    }
    return out;
}

nlohmann::json explain_json(const DualPlan& plan) {
    nlohmann::json leaves = nlohmann::json::array();
    for (const auto& l : plan.leaves) {
        leaves.push_back({{"index", l.index},
                          {"path", l.path},
                          {"atom", l.atom},
                          {"shape", l.shape},
                          {"norm", l.norm->name},
                          {"map", to_string(l.norm->map)},
                          {"target", to_string(l.target)},
                          {"target_value", to_double(l.target)},
                          {"scale_value", l.scale.value()}});
    }
    return {{"network", plan.network},
            {"mass", to_string(plan.mass)},
            {"sensitivity", to_string(plan.sensitivity)},
            {"norm", plan.norm},
            {"leaves", leaves}};
}

std::optional<std::string> explain_why(const DualPlan& plan, const std::string& path) {
    const DualLeaf* leaf = nullptr;
    for (const auto& l : plan.leaves)
        if (l.path == path) leaf = &l;
    if (!leaf) return std::nullopt;
    std::string out = fmt::format("{} ({}{}, mass {}) in network {}\n", leaf->path, leaf->atom,
                                  shape_text(leaf->shape), to_string(leaf->mass), plan.network);
    out += "  t = 1 at the root\n";
    for (const auto& s : leaf->why) {
        std::string rule = s.downstream == 1
                               ? fmt::format("mass {} of {}", to_string(s.child_mass), to_string(s.total_mass))
                               : fmt::format("mass {} of {}, divided by sensitivity {} of what runs after it",
                                             to_string(s.child_mass), to_string(s.total_mass),
                                             to_string(s.downstream));
        out += fmt::format("  {}: x {}  ({})  -> t = {}\n", s.node, to_string(s.factor), rule,
                           to_string(s.target_after));
    }
    if (leaf->target == 0)
        out += leaf->mass == 0 ? "  the weight has mass 0: it gets no update\n"
                               : "  an enclosing module has mass 0: the weight gets no update\n";
    out += fmt::format("  target t = {} = {}\n", to_string(leaf->target), decimal(to_double(leaf->target)));
    out += fmt::format("  map {} ({}), own factor {}\n", to_string(leaf->norm->map), leaf->norm->title,
                       leaf->norm->factor(leaf->shape).str());
    out += fmt::format("  scale t * factor = {} = {}\n", leaf->scale.str(), decimal(leaf->scale.value()));
    return out;
}

}  // namespace modc
