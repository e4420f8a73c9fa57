#include <sstream>

#include "compiler/frontend/print.hpp"

namespace modc {

namespace {

class AstPrinter {
public:
    explicit AstPrinter(const SourceManager& sources) : sources_(sources) {}

    std::string file(const ast::File& f) {
        for (const auto& p : f.primitives) primitive(p);
        for (const auto& d : f.definitions) definition(d);
        for (const auto& o : f.optimizers) optimizer(o);
        return out_.str();
    }

private:
    const SourceManager& sources_;
    std::ostringstream out_;
    int depth_ = 0;

    std::string at(Loc loc) {
        if (!loc.valid()) return "";
        auto lc = sources_.file(loc.file).line_col(loc.begin);
        return " <" + std::to_string(lc.line) + ":" + std::to_string(lc.col) + ">";
    }
    void line(const std::string& text, Loc loc) { out_ << std::string(2 * depth_, ' ') << text << at(loc) << '\n'; }

    void params(const std::vector<ast::Param>& ps) {
        for (const auto& p : ps) {
            line("Param " + p.name + (p.type ? ": " + *p.type : std::string()), p.loc);
            if (p.default_value) nested(*p.default_value);
        }
    }
    void nested(const ast::Expr& e) {
        ++depth_;
        expr(e);
        --depth_;
    }

    void definition(const ast::Definition& d) {
        line(std::string(d.is_network ? "Network " : "Def ") + d.name, d.name_loc);
        ++depth_;
        params(d.params);
        line("Body", {});
        nested(*d.body);
        --depth_;
    }

    void primitive(const ast::Primitive& p) {
        line(std::string(p.is_atom ? "Atom " : "Bond ") + p.name, p.name_loc);
        ++depth_;
        params(p.params);
        line("Input", {});
        nested(*p.input);
        line("Output", {});
        nested(*p.output);
        for (const auto& f : p.fields) {
            line("Field " + f.name, f.loc);
            nested(*f.value);
        }
        --depth_;
    }

    void optimizer(const ast::Optimizer& o) {
        line("Optimizer " + o.name, o.name_loc);
        ++depth_;
        params(o.params);
        statements(o.statements);
        for (const auto& r : o.rules) {
            std::string selectors;
            for (const auto& s : r.selectors) selectors += " " + s.text;
            line("Rule" + selectors, r.loc);
            ++depth_;
            statements(r.statements);
            --depth_;
        }
        --depth_;
    }

    void statements(const std::vector<ast::Statement>& list) {
        for (const auto& s : list) {
            line("Statement " + s.target + " " + s.assign.symbol, s.target_loc);
            nested(*s.value);
        }
    }

    void expr(const ast::Expr& e) {
        using K = ast::ExprKind;
        switch (e.kind) {
            case K::Number: line("Number " + e.text, e.loc); return;
            case K::Name: line("Name " + e.text, e.loc); return;
            case K::Call:
                line("Call " + e.text, e.loc);
                ++depth_;
                for (const auto& a : e.args) {
                    if (a.keyword) {
                        line("Keyword " + *a.keyword, a.keyword_loc);
                        nested(*a.value);
                    } else {
                        expr(*a.value);
                    }
                }
                --depth_;
                return;
            case K::Tuple: line("Tuple", e.loc); break;
            case K::Negate: line("Negate", e.loc); break;
            case K::Power: line("Power", e.loc); break;
            case K::Named: line("Named " + e.text, e.loc); break;
            case K::Chain: {
                std::string ops;
                for (const auto& op : e.ops) ops += (ops.empty() ? "" : " ") + op.symbol;
                line("Chain " + ops, e.loc);
                break;
            }
        }
        ++depth_;
        for (const auto& o : e.operands) expr(*o);
        --depth_;
    }
};

}  // namespace

std::string print_ast(const ast::File& file, const SourceManager& sources) { return AstPrinter(sources).file(file); }

}  // namespace modc
