// The C++ API: compile a .mod file into a dualizer, then apply it to gradients.
//
//   auto d = modc::compile_file("examples/gpt.mod", {.schedule = "polar-express"});
//   d.run(grads, updates);   // one pointer per weight, in weight order (d.weights())
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace modc {

enum class DType { F32, F64 };

struct CompileOptions {
    std::string network;                          // required when the file defines several
    std::string schedule = "polar-express";       // muon, you, polar-express, cubic, svd
    std::map<std::string, std::string> leaf_schedules;  // per weight path, overriding `schedule`
    std::map<std::string, std::string> set;       // network parameters: {"d", "64"}
    DType dtype = DType::F32;
    bool gram = true;      // Gram Newton-Schulz for wide matrices where it saves flops (kernel_plan.hpp)
    // Matrices dualized at once; 0: one per hardware thread. While they run side by side, run()
    // sets OpenBLAS's (process-wide) thread count to 1, and restores it before returning.
    unsigned threads = 0;
};

struct WeightInfo {
    std::string path;
    std::string atom;
    std::vector<std::int64_t> shape;
    std::int64_t elements() const;
};

// The .mod file has errors (the message holds the rendered diagnostics), or an option is bad.
struct CompileError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Dualizer {
public:
    Dualizer(Dualizer&&) noexcept;
    Dualizer& operator=(Dualizer&&) noexcept;
    ~Dualizer();

    const std::string& network() const;
    const std::string& schedule() const;
    DType dtype() const;
    const std::vector<WeightInfo>& weights() const;  // in weight order
    double flops() const;                            // per run

    // grads[i] -> updates[i] for weight i; the dtype must be the one compiled for.
    void run(const float* const* grads, float* const* updates);
    void run(const double* const* grads, double* const* updates);

    struct Impl;

private:
    explicit Dualizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
    friend Dualizer compile_source_text(const std::string&, const std::string&, const CompileOptions&);
};

Dualizer compile_file(const std::string& path, const CompileOptions& options = {});
Dualizer compile_source_text(const std::string& name, const std::string& text, const CompileOptions& options = {});

}  // namespace modc
