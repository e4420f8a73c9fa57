// The C++ API: compile a .mod file into a dualizer, then apply it to gradients; or compile
// its optimizer block into an in-place training step (Optimizer, below).
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
#include <functional>
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
// cuBLAS and the driver API on one GPU (CompileOptions::device; docs/cuda.md); run() copies host gradients to the GPU and
// the updates back, run_device() takes device pointers and a stream. Cuda has no `svd` schedule.
// CudaSim: the Cuda backend's very program (the CUDA source NVRTC compiles, the op listing) on a
// simulated GPU: the kernels compiled for the host by a C++ compiler (MODC_HOST_CXX, else the one
// modc was built with, else `c++`), CBLAS for cuBLAS; no GPU needed. Its "device pointers" are
// host pointers. For checking the GPU program on one's own gradients, not for speed.
enum class Backend { Cpu, Cuda, CudaSim };
// "cpu", "cuda", "cuda-sim".
const char* to_string(Backend backend);
// Cuda or CudaSim: the backends that run the CUDA program.
inline bool runs_cuda(Backend backend) { return backend != Backend::Cpu; }

// The precision of the matmuls' inputs, apart from the storage dtype (products accumulate in
// at least f32; elementwise work stays in the dtype's compute type). Default: the backend's
// default (F32 on the CPU, BF16 on CUDA). Which backend offers which: backend_precisions().
enum class Precision { Default, F32, TF32, BF16 };

struct CompileOptions {
    std::string network;                          // required when the file defines several
    std::string schedule = "polar-express";       // muon, you, polar-express, cubic, svd
    std::map<std::string, std::string> leaf_schedules;  // per weight path, overriding `schedule`
    std::map<std::string, std::string> set;       // network parameters: {"d", "64"}
    DType dtype = DType::F32;
    Backend backend = Backend::Cpu;
    // Cuda and CudaSim: the GPU, by CUDA's device index (torch's cuda:N; each rank of a
    // multi-GPU run passes its own). Everything of the dualizer (and of an optimizer's step) is
    // made on it and runs in its primary context; device pointers given must be on it. An index
    // past the GPUs there are throws BackendError naming both; the CPU takes 0 only.
    int device = 0;
    Precision precision = Precision::Default;
    bool gram = true;      // Gram Newton-Schulz for wide matrices where it saves flops (kernel_plan.hpp)
    // Matrices dualized at once; 0: one per hardware thread. While they run side by side, run()
    // sets OpenBLAS's (process-wide) thread count to 1, and restores it before returning.
    unsigned threads = 0;
    // Host memory, in bytes, that compiling may commit to: the dualizer's work buffers (as the
    // kernel plan sizes them) plus one gradient and one update per weight (and for an optimizer
    // the weights, its state and its buffers). More throws CompileError naming both sizes,
    // before anything is allocated. 0: half of the physical memory.
    std::uint64_t memory_limit = 0;
};

struct WeightInfo {
    std::string path;
    std::string atom;
    std::vector<std::int64_t> shape;
    double target = 0;  // t: the update is t * dualize_norm(G) (explain's "target")
    double scale = 0;   // t times the map's own factor: what multiplies the map's raw output
    std::int64_t elements() const;
};

// The .mod file has errors (the message holds the rendered diagnostics), or an option is bad.
struct CompileError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The backend asked for cannot run here: for Cuda, no CUDA driver, no device, no cuBLAS, no
// NVRTC, or a modc built without the CUDA toolkit; for CudaSim, no host C++ compiler or no CUDA
// toolkit at build time. what(): "the CUDA backend cannot run here: <why>" ("the cuda-sim
// backend ...").
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

// The precisions `backend` offers for `dtype`, the default first. Compiling with another throws
// CompileError naming these.
std::vector<Precision> backend_precisions(Backend backend, DType dtype);
const char* to_string(Precision precision);  // "default", "f32", "tf32", "bf16"

class Dualizer {
public:
    Dualizer(Dualizer&&) noexcept;
    Dualizer& operator=(Dualizer&&) noexcept;
    ~Dualizer();

    const std::string& network() const;
    const std::string& schedule() const;
    DType dtype() const;
    Precision precision() const;  // of the matmuls' inputs, as compiled (never Default)
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
    // BackendError if the GPU fails. weight_done(i), if given, is called once per weight as soon
    // as updates[i] is complete and grads[i] no longer read (on the CPU from the run's threads,
    // while others still run; on the GPU and for BF16 at the end), so that updates can be
    // written out and memory released during the run (modc dualize); what it throws, run throws.
    using WeightDone = std::function<void(std::size_t weight)>;
    void run(const float* const* grads, float* const* updates, const WeightDone& weight_done = {});
    void run(const double* const* grads, double* const* updates, const WeightDone& weight_done = {});
    void run(const std::uint16_t* const* grads, std::uint16_t* const* updates, const WeightDone& weight_done = {});

    // Cuda only: grads[i] -> updates[i] as device pointers on the GPU compiled for (CUdeviceptr values, or what
    // cudaMalloc and torch's data_ptr() give), of the compiled dtype (bf16: its bits), without
    // host copies. `stream` is a CUstream / cudaStream_t (nullptr: the legacy default stream):
    // the run is enqueued on it (device-to-device copies of the tensors into the run's buffers,
    // the CUDA graphs, copies out) and this returns without waiting, except that the cubic
    // schedule synchronises `stream` at each convergence check (the host reads a few flags).
    // Runs on different streams are ordered among themselves; order the tensors' producers and
    // consumers with `stream` as for any kernel. Throws std::invalid_argument on the CPU
    // backend, BackendError if the GPU fails.
    void run_device(const void* const* grads, void* const* updates, void* stream);

    struct Impl;  // internal: made by the compile functions
    explicit Dualizer(std::unique_ptr<Impl> impl);

private:
    friend struct DualizerAccess;  // internal: the library's own access to Impl
    std::unique_ptr<Impl> impl_;
};

Dualizer compile_file(const std::string& path, const CompileOptions& options = {});
Dualizer compile_source_text(const std::string& name, const std::string& text, const CompileOptions& options = {});

// An optimizer: a `.mod` file's `optimizer` block compiled into a training step that updates
// the caller's weights in place (docs/optimizers.md).
//
//   modc::OptimizerOptions options;                      // CompileOptions, plus:
//   options.optimizer = "nesterov";                      // required when the file has several
//   auto opt = modc::compile_optimizer_file("examples/optimizers.mod", options);
//   opt.set_hyperparameter("lr", 0.01);                  // any time: no recompilation
//   opt.step(weights, grads);                            // host pointers, in weight order
//
// State variables (`m` in `m = beta * m + grad`) are owned here, one tensor per weight shaped
// like it, zero before the first step; read_state/write_state copy them (checkpoints). On the
// Cuda backend the whole step runs on the GPU and the state lives there: step_device() takes
// device pointers and a stream, step() copies host tensors through.
struct OptimizerOptions : CompileOptions {
    std::string optimizer;  // the block to run; required when the file defines several
    // The weights this optimizer steps (by path, any order; empty: all). A rank of a distributed
    // step owns a share (see partition()): it compiles, keeps state for and steps only those,
    // and weights() lists them in the network's order.
    std::vector<std::string> owned;
};

class Optimizer {
public:
    Optimizer(Optimizer&&) noexcept;
    Optimizer& operator=(Optimizer&&) noexcept;
    ~Optimizer();

    const std::string& name() const;                 // of the optimizer block
    const Dualizer& dualizer() const;                // the network's duality map, as dualize(...) runs it
    const std::vector<WeightInfo>& weights() const;  // in weight order

    // Hyperparameters: the block's parameters, with its defaults. Unknown names throw
    // std::invalid_argument (with a suggestion); so does a step while one has no value.
    const std::vector<std::string>& hyperparameters() const;
    double hyperparameter(const std::string& name) const;
    void set_hyperparameter(const std::string& name, double value);

    // State: the variables a step reads before it assigns them, in the block's order.
    const std::vector<std::string>& state_names() const;
    // Copies state `name` of weight i out of or into `data` (host memory: weights()[i].elements()
    // values of the optimizer's dtype; on Cuda, after the steps enqueued so far, and waiting for
    // the copy). Throws std::invalid_argument for an unknown name or weight.
    void read_state(const std::string& name, std::size_t weight, void* data) const;
    void write_state(const std::string& name, std::size_t weight, const void* data);
    // Whether weight i has state `name`: in a block with rules, each weight has its rule's state.
    bool has_state(const std::string& name, std::size_t weight) const;
    void zero_state();
    long long steps() const;  // steps taken since compilation (or since set_steps)
    // Sets the steps taken so far, as a checkpoint holds them: the next step is number steps + 1,
    // the count a block reads as `step` (bias corrections, schedules). Throws
    // std::invalid_argument for a negative count.
    void set_steps(long long steps);

    // One step, in place: weights[i] is updated from grads[i] (host pointers, weight order,
    // row-major, the dtype compiled for; f32 or f64). Throws std::invalid_argument for another
    // dtype, BackendError if the backend fails.
    void step(float* const* weights, const float* const* grads);
    void step(double* const* weights, const double* const* grads);

    // Cuda only: one step, in place, on device pointers (the GPU and dtype compiled for),
    // enqueued on `stream`, a CUstream / cudaStream_t (nullptr: the legacy default stream): per
    // segment one kernel per weight, the hyperparameters' current values passed with it, and
    // the dualizer's device path between. Returns without waiting (the cubic schedule's
    // convergence checks excepted, as for Dualizer::run_device); steps on different streams are
    // ordered among themselves. Throws std::invalid_argument on the CPU backend or while a
    // hyperparameter has no value, BackendError if the GPU fails.
    void step_device(void* const* weights, const void* const* grads, void* stream);

    struct Impl;  // internal: made by the compile functions
    explicit Optimizer(std::unique_ptr<Impl> impl);

private:
    std::unique_ptr<Impl> impl_;
};

Optimizer compile_optimizer_file(const std::string& path, const OptimizerOptions& options = {});
Optimizer compile_optimizer_text(const std::string& name, const std::string& text, const OptimizerOptions& options = {});

// Which of N ranks dualizes each weight in a distributed step (docs/distributed.md): weights
// balanced by the modelled flops of their maps in the kernel plan, costliest first.
struct Partition {
    std::string network, schedule;
    int ranks = 1;
    std::vector<WeightInfo> weights;  // in weight order
    std::vector<int> owner;           // by weight
    std::vector<double> cost;         // by weight: modelled flops of its map
    std::vector<double> rank_cost;    // by rank
    double imbalance = 1;             // max / mean of rank_cost
    double round_robin_imbalance = 1; // weight i on rank i mod N, for comparison
    double best_imbalance = 1;        // the least any assignment of whole weights can reach
};

// Throws CompileError (the file, an option, ranks < 1).
Partition partition_file(const std::string& path, int ranks, const CompileOptions& options = {});
Partition partition_text(const std::string& name, const std::string& text, int ranks, const CompileOptions& options = {});

}  // namespace modc
