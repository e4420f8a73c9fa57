#include "compiler/frontend/module_ir.hpp"

#include "support/diagnostics.hpp"

namespace modc::ir {

Pattern Pattern::of_size(std::int64_t n) {
    Pattern p;
    p.kind = Kind::Size;
    p.size = n;
    return p;
}

Pattern Pattern::variable(std::string name) {
    Pattern p;
    p.kind = Kind::Var;
    p.var = std::move(name);
    return p;
}

Pattern Pattern::tuple(std::vector<Pattern> items) {
    Pattern p;
    p.kind = Kind::Tuple;
    p.items = std::move(items);
    return p;
}

namespace {
template <class T>
std::string join_items(const std::vector<T>& items) {
    std::string s = "(";
    for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i].str();
    return s + ")";
}
}  // namespace

std::string Pattern::str() const {
    switch (kind) {
        case Kind::Size: return std::to_string(size);
        case Kind::Var: return var;
        case Kind::Tuple: return join_items(items);
    }
    return "?";
}

std::string Features::str() const {
    switch (kind) {
        case Kind::Unknown: return "?";
        case Kind::Size: return std::to_string(size);
        case Kind::Tuple: return join_items(items);
    }
    return "?";
}

namespace {

void check_size(const Rational& r, const char* what, Loc loc) {
    if (bit_size(r) > kMaxNumberBits) throw NumberTooLarge{loc, what};
}

// The mass (a sum) and sensitivity (a product) of a composition, refused past kMaxNumberBits.
// The product is kept as numerator and denominator, normalized only when they grow large, so
// that multiplying by 1 or by a small factor costs no gcd.
struct Totals {
    Loc loc;
    Rational mass = 0;
    BigInt num = 1, den = 1;

    void add(const Node& c) {
        if (c.mass != 0) {
            mass += c.mass;
            check_size(mass, "mass", loc);
        }
        if (num == 0 || c.sensitivity == 1) return;
        num *= boost::multiprecision::numerator(c.sensitivity);
        den *= boost::multiprecision::denominator(c.sensitivity);
        if (num == 0) {
            den = 1;
        } else if (msb(num) + msb(den) > kMaxNumberBits) {
            Rational product(num, den);
            check_size(product, "sensitivity", loc);
            num = boost::multiprecision::numerator(product);
            den = boost::multiprecision::denominator(product);
        }
    }
    Rational sensitivity() const { return den == 1 ? Rational(num) : Rational(num, den); }
};

}  // namespace

const char* to_string(NodeKind kind) {
    switch (kind) {
        case NodeKind::Atom: return "atom";
        case NodeKind::Bond: return "bond";
        case NodeKind::Compose: return "compose";
        case NodeKind::Tuple: return "tuple";
    }
    return "?";
}

std::string Node::describe() const {
    switch (kind) {
        case NodeKind::Atom:
        case NodeKind::Bond: {
            if (args.empty()) return op;
            std::string s = op + "(";
            for (std::size_t i = 0; i < args.size(); ++i) s += (i ? ", " : "") + modc::to_string(args[i]);
            return s + ")";
        }
        case NodeKind::Compose: return "composition";
        case NodeKind::Tuple: return "tuple";
    }
    return "?";
}

NodePtr Node::atom(std::string op, std::vector<std::string> arg_names, std::vector<Rational> args,
                   std::vector<std::int64_t> shape, std::string norm, Rational mass, Rational sensitivity,
                   Pattern in, Pattern out, Loc loc) {
    MODC_ASSERT(mass >= 0, "atom mass must be non-negative");
    MODC_ASSERT(sensitivity >= 0, "atom sensitivity must be non-negative");
    MODC_ASSERT(!shape.empty(), "an atom has a weight shape");
    MODC_ASSERT(arg_names.size() == args.size(), "one name per argument");
    auto n = std::make_shared<Node>();
    n->kind = NodeKind::Atom;
    n->op = std::move(op);
    n->arg_names = std::move(arg_names);
    n->args = std::move(args);
    n->shape = std::move(shape);
    n->norm = std::move(norm);
    n->mass = std::move(mass);
    n->sensitivity = std::move(sensitivity);
    n->input_pattern = std::move(in);
    n->output_pattern = std::move(out);
    n->loc = loc;
    return n;
}

NodePtr Node::bond(std::string op, std::vector<std::string> arg_names, std::vector<Rational> args,
                   Rational sensitivity, Pattern in, Pattern out, Loc loc) {
    MODC_ASSERT(sensitivity >= 0, "bond sensitivity must be non-negative");
    MODC_ASSERT(arg_names.size() == args.size(), "one name per argument");
    auto n = std::make_shared<Node>();
    n->kind = NodeKind::Bond;
    n->op = std::move(op);
    n->arg_names = std::move(arg_names);
    n->args = std::move(args);
    n->mass = 0;
    n->sensitivity = std::move(sensitivity);
    n->input_pattern = std::move(in);
    n->output_pattern = std::move(out);
    n->loc = loc;
    return n;
}

namespace {

// A composition of `children` in run order; `flatten` merges unlabelled inner compositions.
NodePtr make_compose(std::vector<NodePtr> children, Loc loc, bool flatten) {
    MODC_ASSERT(!children.empty(), "a composition has at least one module");
    auto n = std::make_shared<Node>();
    n->kind = NodeKind::Compose;
    n->loc = loc;
    Totals totals{loc};
    for (auto& c : children) {
        MODC_ASSERT(c != nullptr, "composition of a null module");
        totals.add(*c);
        if (flatten && c->kind == NodeKind::Compose && c->label.empty() && !c->is_power) {
            // A composition no one else holds gives up its children rather than copying them,
            // so that `M * 2 * 2 * ...` and `- - - M` build in linear time.
            if (n->children.empty() && c.use_count() == 1)
                n->children = std::move(c->children);
            else
                for (auto& g : c->children) n->children.push_back(g);
        } else {
            n->children.push_back(c);
        }
    }
    n->mass = totals.mass;
    n->sensitivity = totals.sensitivity();
    return n;
}

}  // namespace

NodePtr Node::compose(std::vector<NodePtr> children, Loc loc) { return make_compose(std::move(children), loc, true); }

NodePtr Node::power(std::vector<NodePtr> copies, Loc loc) {
    NodePtr n = make_compose(std::move(copies), loc, false);
    n->is_power = true;
    return n;
}

NodePtr Node::tuple(std::vector<NodePtr> children, Loc loc) {
    MODC_ASSERT(!children.empty(), "a tuple has at least one module");
    auto n = std::make_shared<Node>();
    n->kind = NodeKind::Tuple;
    n->loc = loc;
    n->mass = 0;
    n->sensitivity = 0;
    for (auto& c : children) {
        MODC_ASSERT(c != nullptr, "tuple of a null module");
        if (c->mass != 0) {
            n->mass += c->mass;
            check_size(n->mass, "mass", loc);
        }
        if (c->sensitivity != 0) {
            n->sensitivity += c->sensitivity;
            check_size(n->sensitivity, "sensitivity", loc);
        }
    }
    n->children = std::move(children);
    return n;
}

NodePtr clone(const Node& node) {
    auto n = std::make_shared<Node>(node);
    for (auto& c : n->children) c = clone(*c);
    return n;
}

void scale_masses(Node& node, const Rational& factor) {
    visit(node, [&](Node& n) { n.mass *= factor; });
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::size_t count_nodes(const Node& node) {
    std::size_t n = 1;
    for (auto& c : node.children) n += count_nodes(*c);
    return n;
}

}  // namespace modc::ir
