#include <sstream>

#include "compiler/frontend/print.hpp"

namespace modc {

using ir::shape_text;

namespace {


std::string line_col(const SourceManager& sources, Loc loc) {
    if (!loc.valid()) return "";
    auto lc = sources.file(loc.file).line_col(loc.begin);
    std::string where = std::to_string(lc.line) + ":" + std::to_string(lc.col);
    return sources.file(loc.file).name() == "<prelude>" ? "prelude:" + where : where;
}

void print_node(std::ostringstream& out, const ir::Node& n, const SourceManager& sources, int depth) {
    out << std::string(2 * depth, ' ');
    switch (n.kind) {
        case ir::NodeKind::Atom:
            out << "atom " << n.describe() << " #" << n.leaf_index << " " << n.path << " shape " << shape_text(n.shape)
                << " norm " << n.norm;
            break;
        case ir::NodeKind::Bond: out << "bond " << n.describe(); break;
        case ir::NodeKind::Compose: out << (n.is_power ? "power" : "compose"); break;
        case ir::NodeKind::Tuple: out << "tuple"; break;
    }
    if (!n.label.empty() && n.kind != ir::NodeKind::Atom) out << " '" << n.label << "'";
    out << " {mass " << to_string(n.mass) << ", sensitivity " << to_string(n.sensitivity) << ", "
        << n.input.str() << " -> " << n.output.str() << "} <" << line_col(sources, n.loc) << ">\n";
    for (const auto& c : n.children) print_node(out, *c, sources, depth + 1);
}

}  // namespace

std::string print_ir(const ir::Network& network, const SourceManager& sources) {
    std::ostringstream out;
    const ir::Node& root = *network.root;
    out << "network " << network.name << ": " << root.input.str() << " -> " << root.output.str() << ", mass "
        << to_string(root.mass) << ", sensitivity " << to_string(root.sensitivity) << ", "
        << network.leaves.size() << (network.leaves.size() == 1 ? " weight\n" : " weights\n");
    print_node(out, root, sources, 1);
    return out.str();
}

std::string print_dot(const ir::Network& network) {
    std::ostringstream out;
    out << "digraph \"" << network.name << "\" {\n"
        << "  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
    int next = 0;
    // Returns the id of the node written for n.
    auto emit = [&](auto&& self, const ir::Node& n) -> int {
        int id = next++;
        std::string label;
        std::string style;
        switch (n.kind) {
            case ir::NodeKind::Atom:
                label = n.describe() + "\\n" + n.path + "\\n" + shape_text(n.shape) + " " + n.norm;
                style = "shape=box, style=filled, fillcolor=\"#cfe2f3\"";
                break;
            case ir::NodeKind::Bond:
                label = n.describe();
                style = "shape=ellipse";
                break;
            case ir::NodeKind::Compose:
                label = n.is_power ? "power" : "compose";
                style = "shape=box, style=rounded";
                break;
            case ir::NodeKind::Tuple:
                label = "tuple";
                style = "shape=box, style=rounded";
                break;
        }
        if (!n.label.empty() && n.kind != ir::NodeKind::Atom) label += " '" + n.label + "'";
        label += "\\nmass " + to_string(n.mass) + ", sens " + to_string(n.sensitivity);
        out << "  n" << id << " [label=\"" << label << "\", " << style << "];\n";
        for (const auto& c : n.children) {
            int child = self(self, *c);
            out << "  n" << id << " -> n" << child << ";\n";
        }
        return id;
    };
    emit(emit, *network.root);
    out << "}\n";
    return out.str();
}

}  // namespace modc
