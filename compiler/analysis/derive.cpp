#include "compiler/analysis/derive.hpp"

#include <map>

namespace modc {

namespace {

using ir::Node;
using ir::NodeKind;

class Derivation {
public:
    Derivation(const ir::Network& network, Diagnostics& diags) : network_(network), diags_(diags) {}

    std::optional<DualPlan> run() {
        DualPlan plan;
        plan.network = network_.name;
        plan.mass = network_.root->mass;
        plan.sensitivity = network_.root->sensitivity;
        targets_.assign(network_.leaves.size(), Rational(0));
        whys_.assign(network_.leaves.size(), {});
        std::vector<WhyStep> chain;
        descend(*network_.root, 1, chain);
        if (!ok_) return std::nullopt;
        for (const Node* leaf : network_.leaves) {
            DualLeaf d;
            d.index = leaf->leaf_index;
            d.path = leaf->path;
            d.atom = leaf->op;
            d.shape = leaf->shape;
            d.norm = find_norm(leaf->norm);
            MODC_ASSERT(d.norm != nullptr, "elaboration checked the norm name");
            d.mass = leaf->mass;
            d.target = targets_[static_cast<std::size_t>(d.index)];
            d.scale = d.norm->factor(d.shape) * d.target;
            d.loc = leaf->loc;
            if (leaf->loc.valid()) {
                const SourceFile& file = diags_.sources().file(leaf->loc.file);
                d.origin = file.name() + ":" + std::to_string(file.line_col(leaf->loc.begin).line);
            }
            d.why = whys_[static_cast<std::size_t>(d.index)];
            plan.leaves.push_back(std::move(d));
        }
        plan.norm = formula(plan);
        return plan;
    }

private:
    const ir::Network& network_;
    Diagnostics& diags_;
    std::vector<Rational> targets_;
    std::vector<std::vector<WhyStep>> whys_;
    bool ok_ = true;

    std::string where(const Node& n) {
        if (!n.loc.valid()) return "";
        auto lc = diags_.sources().file(n.loc.file).line_col(n.loc.begin);
        return " at " + std::to_string(lc.line) + ":" + std::to_string(lc.col);
    }

    // The first weight with mass inside n, for messages.
    static const Node* weight_with_mass(const Node& n) {
        if (n.is_leaf()) return n.mass > 0 ? &n : nullptr;
        for (const auto& c : n.children)
            if (const Node* w = weight_with_mass(*c)) return w;
        return nullptr;
    }

    void descend(const Node& n, const Rational& t, std::vector<WhyStep>& chain) {
        if (n.is_leaf()) {
            targets_[static_cast<std::size_t>(n.leaf_index)] = t;
            whys_[static_cast<std::size_t>(n.leaf_index)] = chain;
            return;
        }
        // A compound of mass 0 (or reached with t = 0) gives zero updates to all its weights.
        if (n.kind == NodeKind::Bond || n.mass == 0 || t == 0) return;
        const std::size_t k = n.children.size();
        std::vector<Rational> after(k, Rational(1));  // sensitivity of what runs after child i
        if (n.kind == NodeKind::Compose)
            for (std::size_t i = k - 1; i-- > 0;) after[i] = after[i + 1] * n.children[i + 1]->sensitivity;
        for (std::size_t i = 0; i < k; ++i) {
            const Node& c = *n.children[i];
            if (c.mass == 0) continue;
            if (after[i] == 0) {
                report_zero_sensitivity(n, i);
                continue;
            }
            Rational factor = c.mass / (n.mass * after[i]);
            chain.push_back(WhyStep{std::string(n.kind == NodeKind::Tuple ? "tuple" : "composition") +
                                        (n.label.empty() ? "" : " '" + n.label + "'") + where(n),
                                    n.loc, c.mass, n.mass, after[i], factor, t * factor});
            descend(c, t * factor, chain);
            chain.pop_back();
        }
    }

    void report_zero_sensitivity(const Node& n, std::size_t i) {
        ok_ = false;
        const Node* zero = nullptr;
        for (std::size_t j = i + 1; j < n.children.size() && !zero; ++j)
            if (n.children[j]->sensitivity == 0) zero = n.children[j].get();
        const Node* weight = weight_with_mass(*n.children[i]);
        std::string what = zero && (zero->kind == NodeKind::Bond || zero->kind == NodeKind::Atom)
                               ? "'" + zero->describe() + "'"
                               : "this module";
        auto& d = diags_.error(zero ? zero->loc : n.loc,
                               what + " has sensitivity 0, so the weights that run before it cannot change the "
                                      "output: their target norm would be infinite");
        if (weight)
            Diagnostics::note(d, weight->loc, "'" + weight->describe() + "' (" + weight->path +
                                                  ") has mass " + to_string(weight->mass) + " and runs before it");
    }

    // max over weights of (1/t) ||W||_norm, grouped by coefficient and norm.
    static std::string formula(const DualPlan& plan) {
        std::map<std::pair<Rational, std::string>, std::vector<std::string>> groups;
        std::vector<std::pair<Rational, std::string>> order;
        for (const auto& l : plan.leaves) {
            if (l.target == 0) continue;
            auto key = std::make_pair(1 / l.target, l.norm->title);
            if (!groups.count(key)) order.push_back(key);
            groups[key].push_back(l.path);
        }
        if (order.empty()) return "0";
        std::vector<std::string> terms;
        for (const auto& key : order) {
            const auto& paths = groups[key];
            std::string coeff = key.first == 1 ? "" : to_string(key.first) + " ";
            std::string term;
            if (paths.size() == 1) {
                term = coeff + "||" + paths[0] + "||_{" + key.second + "}";
            } else {
                std::string list;
                for (std::size_t i = 0; i < paths.size() && i < 3; ++i) list += (i ? ", " : "") + paths[i];
                if (paths.size() > 3) list += ", ... (" + std::to_string(paths.size()) + " weights)";
                term = coeff + "max(||W||_{" + key.second + "} for W in " + list + ")";
            }
            terms.push_back(term);
        }
        if (terms.size() == 1) return terms[0];
        std::string s = "max(";
        for (std::size_t i = 0; i < terms.size(); ++i) s += (i ? ", " : "") + terms[i];
        return s + ")";
    }
};

}  // namespace

std::optional<DualPlan> derive(const ir::Network& network, Diagnostics& diags) {
    return Derivation(network, diags).run();
}

}  // namespace modc
