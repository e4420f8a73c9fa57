#include "compiler/analysis/compilation.hpp"

#include "grammar/grammar.hpp"
#include "compiler/analysis/derive.hpp"
#include "compiler/frontend/infer_features.hpp"
#include "compiler/frontend/name_leaves.hpp"
#include "compiler/analysis/rules.hpp"
#include "compiler/analysis/typecheck.hpp"

namespace modc {

std::unique_ptr<Compilation> compile_source(const std::string& name, const std::string& text,
                                            const ElaborateOptions& options, Stage until) {
    auto c = std::make_unique<Compilation>();
    std::uint32_t prelude_id = c->sources.add("<prelude>", prelude_text());
    c->prelude = parse(c->sources, prelude_id, c->diags);
    MODC_ASSERT(!c->diags.has_errors(), "the prelude does not parse:\n" + c->diags.render());
    c->file_id = c->sources.add(name, text);
    c->file = parse(c->sources, c->file_id, c->diags);
    if (until == Stage::Parse) return c;
    // Declarations that parsed are still elaborated after a syntax error elsewhere, so that
    // one run reports as much as it can.

    c->networks = elaborate(c->prelude, c->file, c->diags, options);
    std::vector<bool> fits;
    for (auto& network : c->networks) {
        fits.push_back(infer_features(network, c->diags));
        name_leaves(network);
    }
    if (until == Stage::IR) return c;

    for (std::size_t i = 0; i < c->networks.size(); ++i)
        if (fits[i])
            if (auto plan = derive(c->networks[i], c->diags)) c->plans.push_back(std::move(*plan));
    typecheck_optimizers(c->file, c->diags);
    for (const auto& o : c->file.optimizers)
        for (const auto& plan : c->plans) check_rules(o, plan, c->diags);
    return c;
}

}  // namespace modc
