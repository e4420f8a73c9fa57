// runtime/cuda/gpu: runs a CUDA program (program/cuda_program.hpp) on a GPU.
//
// The driver API (libcuda.so.1) and cuBLAS (libcublas.so.*) are opened at run time, so modc
// builds and starts where they are missing; gpu_unavailable() then says why, plainly. The
// kernels are compiled with NVRTC for the device's architecture (through the disk cache), every
// buffer is allocated once, and the whole dualization (kernels and cuBLAS calls) is captured
// into one CUDA graph, launched once per run. Only the copies of the gradients in and of the
// updates out stay outside it; and the cubic schedule's convergence checks (codegen_cuda.hpp,
// Converged), where the host reads a few flags and may skip the steps left, split the run into
// one graph per stretch between them.
//
// Two ways in: run() takes host pointers and waits for the result; run_device() takes device
// pointers and a stream of the caller's, enqueues the whole run on it and returns (see there).
#pragma once
#include <memory>
#include <stdexcept>
#include <string>

#include "runtime/cuda/cache.hpp"
#include "program/cuda_program.hpp"

// The driver's stream type, as <cuda.h> declares it (the same as cudaStream_t), so that callers
// need no CUDA header. A null stream is the legacy default stream.
typedef struct CUstream_st* CUstream;

namespace modc::cuda {

struct GpuError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Empty when the CUDA backend can run here; else why not, as a sentence (no driver, no device,
// no cuBLAS, no NVRTC).
std::string gpu_unavailable();
// The same for the cuda-sim backend: it needs a host C++ compiler only.
std::string sim_unavailable();

struct GpuOptions {
    bool graph = true;                  // capture the run as one CUDA graph
    const DiskCache* cache = nullptr;   // for the NVRTC compilation
    int device = 0;
    // The cuda-sim backend: the simulator (sim/sim.hpp) in place of the driver and cuBLAS, and
    // the kernels built for the host (through host_cache when not null). Needs no GPU.
    bool simulate = false;
    const DiskCache* host_cache = nullptr;
};

class GpuDualizer {
public:
    // Compiles the program for the device, loads it and allocates every buffer. Throws GpuError.
    explicit GpuDualizer(Program program, const GpuOptions& options = {});
    ~GpuDualizer();
    GpuDualizer(const GpuDualizer&) = delete;
    GpuDualizer& operator=(const GpuDualizer&) = delete;

    const Program& program() const;
    std::string device() const;  // "NVIDIA H100 80GB HBM3, sm_90"
    std::size_t graphs() const;  // CUDA graphs the run launches (0: graphs are off)
    bool from_cache() const;     // the kernels came from the disk cache

    // grads[i] and updates[i] are host pointers to weight i's tensor (weight order), of the
    // program's storage type (bf16 bits, or its element type). Copies in, runs, copies out; throws GpuError.
    void run(const void* const* grads, void* const* updates);

    // grads[i] and updates[i] are device pointers (on this dualizer's device) to weight i's
    // tensor, of the storage type. Nothing passes through the host: on `stream`, the gradients
    // are copied (device to device) into the run's own buffers, the run's graphs are launched,
    // and the updates copied out; then it returns without waiting for the GPU. Only the cubic
    // schedule's convergence checks wait (they read flags on the host): that run synchronises
    // `stream` at each check. Runs on different streams, and host runs, are ordered by an event,
    // since they share the buffers. Throws GpuError.
    void run_device(const void* const* grads, void* const* updates, CUstream stream);

    // GPU time of the last run, without the copies (after a run_device, waits for it to end).
    double last_ms() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace modc::cuda
