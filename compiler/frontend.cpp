#include "frontend.hpp"

#include "../grammar/grammar.hpp"
#include "infer_features.hpp"
#include "name_leaves.hpp"

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
    for (auto& network : c->networks) {
        infer_features(network, c->diags);
        name_leaves(network);
    }
    return c;
}

}  // namespace modc
