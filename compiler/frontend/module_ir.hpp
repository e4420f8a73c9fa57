// The module IR: the network after elaboration. Four node kinds (atom, bond, compose, tuple);
// sums and scalar multiples are sugar (Add over a tuple, Mul composed in front). Every node
// knows its mass, sensitivity, feature sizes and source location; leaves carry index and path.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/rational.hpp"
#include "support/source.hpp"

namespace modc::ir {

// A feature-size pattern in a primitive's signature: a size, a variable local to the
// instance (`x` in `x -> x`), or a tuple of patterns.
struct Pattern {
    enum class Kind { Size, Var, Tuple } kind = Kind::Var;
    std::int64_t size = 0;
    std::string var;
    std::vector<Pattern> items;

    static Pattern of_size(std::int64_t n);
    static Pattern variable(std::string name);
    static Pattern tuple(std::vector<Pattern> items);
    std::string str() const;
};

// Feature sizes after inference: known, unknown (any size fits), or a tuple.
struct Features {
    enum class Kind { Unknown, Size, Tuple } kind = Kind::Unknown;
    std::int64_t size = 0;
    std::vector<Features> items;
    std::string str() const;  // "784", "?", "(128, 128)"
};

enum class NodeKind { Atom, Bond, Compose, Tuple };
const char* to_string(NodeKind kind);

struct Node;
using NodePtr = std::shared_ptr<Node>;

struct Node {
    NodeKind kind = NodeKind::Bond;
    std::string op;                  // Atom/Bond: the primitive's name
    std::vector<std::string> arg_names;
    std::vector<Rational> args;      // Atom/Bond: evaluated arguments, in parameter order
    Rational mass;
    Rational sensitivity;
    Pattern input_pattern, output_pattern;  // Atom/Bond: the instantiated signature
    Features input, output;          // filled by infer_features
    Loc loc;
    std::string label;               // the def or `as` name this node was made under, if any
    bool named = false;              // the label came from `as` (a def's name does not replace it)
    bool is_power = false;           // Compose of the copies made by `M ^ n`
    std::vector<NodePtr> children;   // Compose: in run order (input side first); Tuple: in order

    // Atoms only.
    std::vector<std::int64_t> shape;
    std::string norm;
    int leaf_index = -1;
    std::string path;

    bool is_leaf() const { return kind == NodeKind::Atom; }
    // "Linear(10, 128)": the primitive with its evaluated arguments, for messages.
    std::string describe() const;

    // Constructors that check invariants and compute mass and sensitivity of compounds.
    static NodePtr atom(std::string op, std::vector<std::string> arg_names, std::vector<Rational> args,
                        std::vector<std::int64_t> shape, std::string norm, Rational mass, Rational sensitivity,
                        Pattern in, Pattern out, Loc loc);
    static NodePtr bond(std::string op, std::vector<std::string> arg_names, std::vector<Rational> args,
                        Rational sensitivity, Pattern in, Pattern out, Loc loc);
    // children in run order; nested unlabelled compositions are flattened.
    static NodePtr compose(std::vector<NodePtr> children, Loc loc);
    static NodePtr tuple(std::vector<NodePtr> children, Loc loc);
    // The n copies of `M ^ n`, composed, each kept whole (never flattened) so that it can be
    // named by its index.
    static NodePtr power(std::vector<NodePtr> copies, Loc loc);
};

// Thrown by Node::compose, Node::power and Node::tuple when the mass or sensitivity of the compound would
// need more than kMaxNumberBits bits: bad input (`Mul(3) ^ 100000`), reported by the elaborator.
struct NumberTooLarge {
    Loc loc;
    std::string what;  // "mass" or "sensitivity"
};

// A deep copy: every use of a module value gets weights of its own.
NodePtr clone(const Node& node);
// Multiplies the mass of every node below and including `node` (the rule behind `tare`).
void scale_masses(Node& node, const Rational& factor);
std::size_t count_nodes(const Node& node);
// "[256, 784]": a weight shape as messages and reports print it.
std::string shape_text(const std::vector<std::int64_t>& shape);

struct Network {
    std::string name;
    Loc loc;
    NodePtr root;
    std::vector<Node*> leaves;  // in weight order
};

// Calls f(node) on every node, parents before children, children in order.
template <class F>
void visit(Node& node, F&& f) {
    f(node);
    for (auto& c : node.children) visit(*c, f);
}

}  // namespace modc::ir
