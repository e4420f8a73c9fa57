// The lowering driver of the front end: prelude and file -> AST -> module IR -> dual plan,
// running the passes in order (elaborate, infer_features, name_leaves, derive; and the
// optimizer type check). Stops before a stage whose input
// had errors, so that one mistake is reported once.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "grammar/ast.hpp"
#include "support/diagnostics.hpp"
#include "compiler/analysis/dual_plan.hpp"
#include "compiler/frontend/elaborate.hpp"
#include "compiler/frontend/module_ir.hpp"

namespace modc {

struct Compilation {
    SourceManager sources;
    Diagnostics diags{sources};
    ast::File prelude;
    ast::File file;
    std::uint32_t file_id = 0;
    std::vector<ir::Network> networks;
    std::vector<DualPlan> plans;  // one per network that derived, in the same order
};

// The text of prelude/prelude.mod, compiled into modc.
const char* prelude_text();

enum class Stage { Parse, IR, Dual };

std::unique_ptr<Compilation> compile_source(const std::string& name, const std::string& text,
                                            const ElaborateOptions& options = {}, Stage until = Stage::Dual);

}  // namespace modc
