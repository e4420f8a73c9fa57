#include "compiler/frontend/name_leaves.hpp"

#include <cctype>
#include <map>

namespace modc {

namespace {

using ir::Node;

struct Item {
    Node* node;
    std::string segment;
    bool copy;  // a copy of a labelled power: its own label, if any, adds one more level
};

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The nearest named nodes below `node`.
void frontier(Node& node, std::vector<Item>& items) {
    for (std::size_t i = 0; i < node.children.size(); ++i) {
        Node& c = *node.children[i];
        if (node.is_power && !node.label.empty())
            items.push_back({&c, "[" + std::to_string(i) + "]", true});
        else if (!c.label.empty())
            items.push_back({&c, c.label, false});
        else if (c.is_leaf())
            items.push_back({&c, lower(c.op), false});
        else
            frontier(c, items);
    }
}

std::string join(const std::string& path, const std::string& segment) {
    if (path.empty()) return segment;
    return segment.front() == '[' ? path + segment : path + "." + segment;
}

void name(Node& node, const std::string& path) {
    std::vector<Item> items;
    frontier(node, items);
    if (items.size() == 1 && items[0].node->is_leaf() && items[0].node->label.empty() && !items[0].copy &&
        !path.empty()) {
        items[0].node->path = path;
        return;
    }
    std::map<std::string, int> count, seen;
    for (const auto& it : items) ++count[it.segment];
    for (auto& it : items) {
        std::string segment = it.segment;
        if (count[segment] > 1) segment += "[" + std::to_string(seen[it.segment]++) + "]";
        std::string child = join(path, segment);
        if (it.copy && !it.node->label.empty()) child = join(child, it.node->label);
        if (it.node->is_leaf())
            it.node->path = child;
        else
            name(*it.node, child);
    }
}

}  // namespace

void name_leaves(ir::Network& network) {
    network.leaves.clear();
    ir::visit(*network.root, [&](Node& n) {
        if (n.is_leaf()) {
            n.leaf_index = static_cast<int>(network.leaves.size());
            network.leaves.push_back(&n);
        }
    });
    Node& root = *network.root;
    if (root.is_leaf())
        root.path = root.label.empty() ? lower(root.op) : root.label;
    else
        name(root, root.named ? root.label : "");  // `network n = (...) as top` prefixes paths with top
}

}  // namespace modc
