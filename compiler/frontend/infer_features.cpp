#include "compiler/frontend/infer_features.hpp"

#include <functional>
#include <map>

namespace modc {

namespace {

using ir::Node;
using ir::NodeKind;
using ir::Pattern;

// A union-find over feature-size terms. Size terms remember which module declared them, and
// whether as its input or its output, so that a conflict can name both modules.
class Terms {
public:
    struct Term {
        enum class Kind { Var, Size, Tuple } kind = Kind::Var;
        std::int64_t size = 0;
        std::vector<int> items;
        const Node* origin = nullptr;
        bool origin_output = false;
    };

    int var() { return add(Term{}); }
    int size(std::int64_t n, const Node* origin, bool output) {
        return add(Term{Term::Kind::Size, n, {}, origin, output});
    }
    int tuple(std::vector<int> items) { return add(Term{Term::Kind::Tuple, 0, std::move(items), nullptr, false}); }

    int find(int t) {
        while (parent_[t] != t) t = parent_[t] = parent_[parent_[t]];
        return t;
    }
    const Term& at(int t) { return terms_[find(t)]; }

    // Unifies a and b; on a conflict returns the two clashing terms (a's side first).
    std::optional<std::pair<int, int>> unify(int a, int b) {
        a = find(a);
        b = find(b);
        if (a == b) return std::nullopt;
        Term& ta = terms_[a];
        Term& tb = terms_[b];
        if (ta.kind == Term::Kind::Var) return bind(a, b);
        if (tb.kind == Term::Kind::Var) return bind(b, a);
        if (ta.kind != tb.kind) return std::make_pair(a, b);
        if (ta.kind == Term::Kind::Size) {
            if (ta.size != tb.size) return std::make_pair(a, b);
            parent_[b] = a;
            return std::nullopt;
        }
        if (ta.items.size() != tb.items.size()) return std::make_pair(a, b);
        std::vector<int> ia = ta.items, ib = tb.items;
        parent_[b] = a;
        for (std::size_t i = 0; i < ia.size(); ++i)
            if (auto clash = unify(ia[i], ib[i])) return clash;
        return std::nullopt;
    }

    ir::Features resolve(int t, int depth = 0) {
        const Term& term = at(t);
        ir::Features f;
        if (term.kind == Term::Kind::Size) {
            f.kind = ir::Features::Kind::Size;
            f.size = term.size;
        } else if (term.kind == Term::Kind::Tuple && depth < 64) {
            f.kind = ir::Features::Kind::Tuple;
            std::vector<int> items = term.items;
            for (int i : items) f.items.push_back(resolve(i, depth + 1));
        }
        return f;
    }

private:
    std::vector<Term> terms_;
    std::vector<int> parent_;

    int add(Term t) {
        terms_.push_back(std::move(t));
        parent_.push_back(static_cast<int>(parent_.size()));
        return parent_.back();
    }
    bool occurs(int var, int t, int depth = 0) {
        t = find(t);
        if (t == var) return true;
        if (depth > 256) return true;
        if (terms_[t].kind != Term::Kind::Tuple) return false;
        std::vector<int> items = terms_[t].items;
        for (int i : items)
            if (occurs(var, i, depth + 1)) return true;
        return false;
    }
    std::optional<std::pair<int, int>> bind(int var, int t) {
        if (occurs(var, t)) return std::make_pair(var, t);
        parent_[var] = t;
        return std::nullopt;
    }
};

class Inference {
public:
    Inference(Diagnostics& diags) : diags_(diags) {}

    bool run(Node& root) {
        auto [in, out] = visit(root);
        (void)in;
        (void)out;
        for (auto& [node, io] : io_) {
            node->input = terms_.resolve(io.first);
            node->output = terms_.resolve(io.second);
        }
        return ok_;
    }

private:
    Diagnostics& diags_;
    Terms terms_;
    std::map<Node*, std::pair<int, int>> io_;
    bool ok_ = true;

    int instantiate(const Pattern& p, std::map<std::string, int>& vars, const Node* origin, bool output) {
        switch (p.kind) {
            case Pattern::Kind::Size: return terms_.size(p.size, origin, output);
            case Pattern::Kind::Var: {
                auto it = vars.find(p.var);
                if (it != vars.end()) return it->second;
                return vars[p.var] = terms_.var();
            }
            case Pattern::Kind::Tuple: {
                std::vector<int> items;
                for (const auto& item : p.items) items.push_back(instantiate(item, vars, origin, output));
                return terms_.tuple(std::move(items));
            }
        }
        return terms_.var();
    }

    std::string shape_of(int t) {
        const auto& term = terms_.at(t);
        if (term.kind == Terms::Term::Kind::Size) return std::to_string(term.size) + " features";
        if (term.kind == Terms::Term::Kind::Tuple) return "a tuple of " + std::to_string(term.items.size());
        return "any size";
    }

    std::string side(int t, bool as_consumer) {
        const auto& term = terms_.at(t);
        std::string what = shape_of(t);
        if (term.origin) {
            std::string who = "'" + term.origin->describe() + "'";
            return who + (term.origin_output ? " outputs " : " expects ") + what + (term.origin_output ? "" : " as input");
        }
        return (as_consumer ? "the next module expects " : "the previous module gives ") + what;
    }

    // `producer` flows into `consumer`; `site` is the module that receives the value.
    void connect(int producer, int consumer, const Node& site) {
        auto clash = terms_.unify(consumer, producer);
        if (!clash) return;
        ok_ = false;
        int expected = clash->first, got = clash->second;
        const auto& te = terms_.at(expected);
        const auto& tg = terms_.at(got);
        Loc where = te.origin ? te.origin->loc : site.loc;
        auto& d = diags_.error(where, "modules do not fit: " + side(expected, true) + ", but " + side(got, false));
        if (tg.origin) Diagnostics::note(d, tg.origin->loc, "'" + tg.origin->describe() + "' is here");
    }

    std::pair<int, int> visit(Node& node) {
        std::pair<int, int> io;
        switch (node.kind) {
            case NodeKind::Atom:
            case NodeKind::Bond: {
                std::map<std::string, int> vars;
                int in = instantiate(node.input_pattern, vars, &node, false);
                int out = instantiate(node.output_pattern, vars, &node, true);
                io = {in, out};
                break;
            }
            case NodeKind::Compose: {
                auto first = visit(*node.children.front());
                int out = first.second;
                for (std::size_t i = 1; i < node.children.size(); ++i) {
                    auto next = visit(*node.children[i]);
                    connect(out, next.first, *node.children[i]);
                    out = next.second;
                }
                io = {first.first, out};
                break;
            }
            case NodeKind::Tuple: {
                int in = terms_.var();
                std::vector<int> outs;
                for (auto& c : node.children) {
                    auto child = visit(*c);
                    connect(in, child.first, *c);
                    outs.push_back(child.second);
                }
                io = {in, terms_.tuple(std::move(outs))};
                break;
            }
        }
        io_[&node] = io;
        return io;
    }
};

}  // namespace

bool infer_features(ir::Network& network, Diagnostics& diags) {
    Inference inference(diags);
    return inference.run(*network.root);
}

}  // namespace modc
