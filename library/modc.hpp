// The C++ API: compile a .mod file into a dualizer, then apply it to gradients.
//
//   modc::CompileOptions options;
//   options.backend = modc::Backend::Cuda;            // or Cpu (the default)
//   auto d = modc::compile_file("examples/gpt.mod", options);
//   d.run(grads, updates);   // host pointers, one per weight, in weight order (d.weights())
//
// Errors: CompileError (the .mod file, an option), BackendUnavailable (a CompileError: the
// backend cannot run on this machine, e.g. Cuda without a GPU; what() says why), BackendError
// (the backend failed while setting up or running, e.g. a CUDA driver error).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace modc {

// The element type of gradients and updates. BF16: bfloat16, passed as its bits
// (std::uint16_t) and computed in f32; updates are rounded to nearest even (support/bf16.hpp).
enum class DType { F32, F64, BF16 };

// Where the dualizer runs. Cpu: LLVM ORC JIT + OpenBLAS. Cuda: CUDA kernels compiled by NVRTC,
// cuBLAS and the driver API on GPU 0 (docs/cuda.md); gradients are copied to the GPU and the
// updates back on each run. Cuda has no `svd` schedule.
enum class Backend { Cpu, Cuda };
struct CompileOptions {
    std::string network;                          // required when the file defines several
    std::string schedule = "polar-express";       // muon, you, polar-express, cubic, svd
    std::map<std::string, std::string> leaf_schedules;  // per weight path, overriding `schedule`
    std::map<std::string, std::string> set;       // network parameters: {"d", "64"}
    DType dtype = DType::F32;
    Backend backend = Backend::Cpu;
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

// The backend asked for cannot run here: for Cuda, no CUDA driver, no device, no cuBLAS, no
// NVRTC, or a modc built without the CUDA toolkit. what(): "the CUDA backend cannot run here:
// <why>".
struct BackendUnavailable : CompileError {
    using CompileError::CompileError;
};

// The backend failed while setting up or running (a CUDA driver, NVRTC or cuBLAS error);
// what() names the call that failed.
struct BackendError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Empty when `backend` can run here, else why not (the reason BackendUnavailable gives).
std::string backend_unavailable(Backend backend);

class Dualizer {
public:
    Dualizer(Dualizer&&) noexcept;
    Dualizer& operator=(Dualizer&&) noexcept;
    ~Dualizer();

    const std::string& network() const;
    const std::string& schedule() const;
    DType dtype() const;
    Backend backend() const;
    const std::vector<WeightInfo>& weights() const;  // in weight order
    double flops() const;                            // per run
    // "cpu", or for Cuda the GPU and how the run is set up:
    // "NVIDIA H100 80GB HBM3, sm_90; kernels from the cache; one CUDA graph".
    std::string device() const;
    // The parts of device() on their own: "cpu" or "NVIDIA H100 80GB HBM3, sm_90"; and whether
    // the CUDA kernels came from the NVRTC disk cache (false on the CPU).
    std::string device_name() const;
    bool kernels_from_cache() const;
    // Cuda: the GPU time of the last run, without the copies; 0 on the CPU.
    double last_run_ms() const;

    // grads[i] -> updates[i] for weight i, host pointers; the dtype must be the one compiled
    // for (std::uint16_t: BF16 bits). Throws std::invalid_argument for another dtype, and
    // BackendError if the GPU fails.
    void run(const float* const* grads, float* const* updates);
    void run(const double* const* grads, double* const* updates);
    void run(const std::uint16_t* const* grads, std::uint16_t* const* updates);

    struct Impl;

private:
    explicit Dualizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
    friend Dualizer compile_source_text(const std::string&, const std::string&, const CompileOptions&);
};

Dualizer compile_file(const std::string& path, const CompileOptions& options = {});
Dualizer compile_source_text(const std::string& name, const std::string& text, const CompileOptions& options = {});

}  // namespace modc
