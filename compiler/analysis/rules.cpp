#include "compiler/analysis/rules.hpp"

namespace modc {

namespace {

// `*` matches any run of characters (dots and brackets included); everything else itself.
bool glob(const std::string& pattern, const std::string& text) {
    std::size_t p = 0, t = 0, star = std::string::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

bool selects(const ast::Selector& s, const DualLeaf& leaf) { return s.text == leaf.atom || glob(s.text, leaf.path); }

std::string selector_list(const ast::Rule& r) {
    std::string out;
    for (const auto& s : r.selectors) out += (out.empty() ? "" : ", ") + s.text;
    return out;
}

}  // namespace

std::vector<ast::Optimizer> rule_blocks(const ast::Optimizer& optimizer) {
    if (optimizer.rules.empty()) return {optimizer};
    std::vector<ast::Optimizer> out;
    for (const auto& r : optimizer.rules) {
        ast::Optimizer block;
        block.name = optimizer.name + " for " + selector_list(r);
        block.name_loc = r.loc;
        block.loc = r.loc;
        block.params = optimizer.params;
        block.statements = r.statements;
        out.push_back(std::move(block));
    }
    return out;
}

std::vector<int> bind_rules(const ast::Optimizer& optimizer, const std::vector<DualLeaf>& leaves) {
    std::vector<int> out(leaves.size(), optimizer.rules.empty() ? 0 : -1);
    for (std::size_t i = 0; i < leaves.size(); ++i)
        for (std::size_t r = 0; r < optimizer.rules.size() && out[i] < 0; ++r)
            for (const auto& s : optimizer.rules[r].selectors)
                if (selects(s, leaves[i])) {
                    out[i] = static_cast<int>(r);
                    break;
                }
    return out;
}

bool check_rules(const ast::Optimizer& optimizer, const DualPlan& plan, Diagnostics& diags) {
    if (optimizer.rules.empty()) return true;
    bool ok = true;
    for (const auto& r : optimizer.rules)
        for (const auto& s : r.selectors) {
            bool any = false;
            for (const auto& leaf : plan.leaves) any |= selects(s, leaf);
            if (!any) {
                diags.error(s.loc, "'" + s.text + "' selects no weight of network '" + plan.network +
                                       "': name an atom (Linear, Embed, ...) or a pattern over weight paths (modc explain lists them)");
                ok = false;
            }
        }
    const std::vector<int> rule = bind_rules(optimizer, plan.leaves);
    for (std::size_t i = 0; i < rule.size(); ++i)
        if (rule[i] < 0) {
            diags.error(optimizer.name_loc, "optimizer '" + optimizer.name + "' has no rule for weight '" + plan.leaves[i].path +
                                                "' (" + plan.leaves[i].atom + "); add a rule that selects it, e.g. for " +
                                                plan.leaves[i].atom + " { ... }");
            ok = false;
        }
    return ok;
}

}  // namespace modc
