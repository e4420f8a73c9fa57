// libFuzzer harness over the front half of modc: parse, elaborate, infer feature sizes, name
// leaves, derive and type-check (compile_source), then render the diagnostics, on any bytes.
// Built and run by scripts/fuzz.sh (clang++-14, -fsanitize=fuzzer,address,undefined); a crash,
// a sanitizer report, a leak or an input that takes longer than the run's -timeout is a bug:
// keep the input as a test in tests/errors/ or tests/unit/test_robustness.cpp.
#include <cstddef>
#include <cstdint>
#include <string>

#include "compiler/analysis/compilation.hpp"
#include "support/large_stack.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    // On the compiler's large stack, as the modc command and the library run it: its limits on
    // nesting are sized for that stack.
    modc::run_with_large_stack([&] {
        auto c = modc::compile_source("fuzz.mod", text);
        (void)c->diags.render();
    });
    return 0;
}
