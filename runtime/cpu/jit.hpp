// ORC LLJIT around one generated module: optimised for the host CPU (so the loop vectorizer
// uses its vector width), compiled, and looked up by name.
#pragma once
#include <memory>
#include <string>

#include "program/cpu_program.hpp"

namespace llvm::orc {
class LLJIT;
}

namespace modc::cpu {

class Jit {
public:
    explicit Jit(LlvmModule module);
    ~Jit();
    Jit(const Jit&) = delete;
    Jit& operator=(const Jit&) = delete;

    void* lookup(const std::string& name);
    template <class F>
    F* function(const std::string& name) {
        return reinterpret_cast<F*>(lookup(name));
    }

private:
    std::unique_ptr<llvm::orc::LLJIT> jit_;
};

// The optimised IR of a module as text, as the JIT compiles it (for `--emit llvm`).
std::string optimized_ir(LlvmModule module);

}  // namespace modc::cpu
