#include "library/modc.hpp"

#include "library/compile.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "compiler/analysis/compilation.hpp"
#include "compiler/backend/codegen_cuda.hpp"
#include "compiler/backend/codegen_llvm.hpp"
#include "compiler/backend/schedule.hpp"
#include "runtime/cpu/dualizer.hpp"
#include "support/bf16.hpp"
#include "support/large_stack.hpp"
#include "support/suggest.hpp"
#ifdef MODC_WITH_CUDA
#include "runtime/cuda/gpu.hpp"
#include "runtime/cuda/sim/context_counts.hpp"
#endif

namespace modc {

std::int64_t WeightInfo::elements() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

const char* to_string(Backend backend) {
    switch (backend) {
        case Backend::Cpu: return "cpu";
        case Backend::Cuda: return "cuda";
        case Backend::CudaSim: return "cuda-sim";
    }
    return "?";
}

std::string backend_unavailable(Backend backend) {
    if (backend == Backend::Cpu) return "";
#ifdef MODC_WITH_CUDA
    return backend == Backend::CudaSim ? cuda::sim_unavailable() : cuda::gpu_unavailable();
#else
    return std::string("this modc was built without the CUDA toolkit (none was found when it was built)");
#endif
}

// "the CUDA backend cannot run here: <why>" (the cuda-sim backend: "the cuda-sim backend ...").
std::string unavailable_message(Backend backend, const std::string& why) {
    return std::string(backend == Backend::CudaSim ? "the cuda-sim backend" : "the CUDA backend") + " cannot run here: " + why;
}

namespace {

// The CPU backend's precisions (runtime/cpu), the default first.
std::vector<Precision> cpu_precisions(DType dtype) {
    // bf16: oneDNN's matmuls on bf16 inputs (runtime/cpu/products.hpp); none in f64.
    if (dtype == DType::F64) return {Precision::F32};
    return {Precision::F32, Precision::BF16};
}

// The CUDA backend's precisions (runtime/cuda), the default first: bf16 GEMMs on tensor cores
// (what Muon and modded-nanogpt run Newton-Schulz in; docs/cuda.md), tf32, or f32 on CUDA cores.
// f64 gradients run their GEMMs in f64.
std::vector<Precision> cuda_precisions(DType dtype) {
    if (dtype == DType::F64) return {Precision::F32};
    return {Precision::BF16, Precision::TF32, Precision::F32};
}

}  // namespace

std::vector<Precision> backend_precisions(Backend backend, DType dtype) {
    return runs_cuda(backend) ? cuda_precisions(dtype) : cpu_precisions(dtype);
}

const char* to_string(Precision precision) {
    switch (precision) {
        case Precision::Default: return "default";
        case Precision::F32: return "f32";
        case Precision::TF32: return "tf32";
        case Precision::BF16: return "bf16";
    }
    return "?";
}

// The precision the kernel plan records: the backend's default, or the one asked for if the
// backend offers it for the dtype. F32 with f64 gradients means the element type (f64).
kp::Precision plan_precision(const CompileOptions& options) {
    const std::vector<Precision> offered = backend_precisions(options.backend, options.dtype);
    Precision p = options.precision == Precision::Default ? offered.front() : options.precision;
    if (std::find(offered.begin(), offered.end(), p) == offered.end()) {
        std::string names;
        for (Precision o : offered) names += std::string(names.empty() ? "" : ", ") + to_string(o);
        static const char* dtypes[] = {"f32", "f64", "bf16"};
        throw CompileError(std::string("precision ") + to_string(p) + " is not available on the " +
                           to_string(options.backend) + " backend for " +
                           dtypes[static_cast<int>(options.dtype)] + " gradients; it offers " + names);
    }
    return p == Precision::TF32 ? kp::Precision::TF32 : p == Precision::BF16 ? kp::Precision::BF16 : kp::Precision::F32;
}

struct Dualizer::Impl {
    std::string network;
    std::string schedule;
    DType dtype = DType::F32;
    Precision precision = Precision::F32;
    Backend backend = Backend::Cpu;
    int device = 0;  // Cuda, CudaSim: the GPU's index
    std::vector<WeightInfo> weights;
    double flops = 0;
    // Cpu: one of these (BF16 runs the f32 one on widened copies of the gradients).
    std::unique_ptr<cpu::Dualizer<float>> cpu32;
    std::unique_ptr<cpu::Dualizer<double>> cpu64;
    std::vector<std::vector<float>> wide_grads, wide_updates;  // BF16 on the CPU, allocated once
#ifdef MODC_WITH_CUDA
    std::unique_ptr<cuda::DiskCache> cache;
    std::unique_ptr<cuda::DiskCache> host_cache;  // cuda-sim: the kernels' host builds
    std::unique_ptr<cuda::GpuDualizer> gpu;
#endif

    void check_dtype(DType given) const {
        static const char* const names[] = {"f32 (float)", "f64 (double)", "bf16 (std::uint16_t)"};
        if (given != dtype)
            throw std::invalid_argument(std::string("this dualizer was compiled for ") + names[static_cast<int>(dtype)] +
                                        " tensors, not " + names[static_cast<int>(given)]);
    }

    void run_gpu(const void* const* grads, void* const* updates) {
#ifdef MODC_WITH_CUDA
        try {
            gpu->run(grads, updates);
        } catch (const cuda::GpuError& e) {
            throw BackendError(std::string("the CUDA backend failed: ") + e.what());
        }
#else
        (void)grads;
        (void)updates;
#endif
    }

    void run_gpu_device(const void* const* grads, void* const* updates, void* stream) {
        if (!runs_cuda(backend))
            throw std::invalid_argument("run_device needs the CUDA backend: this dualizer runs on the CPU; "
                                        "use run() with host pointers, or compile with Backend::Cuda");
#ifdef MODC_WITH_CUDA
        try {
            gpu->run_device(grads, updates, static_cast<CUstream>(stream));
        } catch (const cuda::GpuError& e) {
            throw BackendError(std::string("the CUDA backend failed: ") + e.what());
        }
#else
        (void)grads;
        (void)updates;
        (void)stream;
#endif
    }

    // BF16 on the CPU: widen each gradient (exact), run in f32, round each update to bf16.
    void run_cpu_bf16(const std::uint16_t* const* grads, std::uint16_t* const* updates) {
        std::vector<const float*> in;
        std::vector<float*> out;
        for (std::size_t i = 0; i < weights.size(); ++i) {
            auto& g = wide_grads[i];
            for (std::size_t e = 0; e < g.size(); ++e) g[e] = bf16_to_f32(grads[i][e]);
            in.push_back(g.data());
            out.push_back(wide_updates[i].data());
        }
        cpu32->run(in.data(), out.data());
        for (std::size_t i = 0; i < weights.size(); ++i) {
            const auto& u = wide_updates[i];
            for (std::size_t e = 0; e < u.size(); ++e) updates[i][e] = f32_to_bf16(u[e]);
        }
    }
};

Dualizer::Dualizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dualizer::Dualizer(Dualizer&&) noexcept = default;
Dualizer& Dualizer::operator=(Dualizer&&) noexcept = default;
Dualizer::~Dualizer() = default;

const std::string& Dualizer::network() const { return impl_->network; }
const std::string& Dualizer::schedule() const { return impl_->schedule; }
DType Dualizer::dtype() const { return impl_->dtype; }
Precision Dualizer::precision() const { return impl_->precision; }
Backend Dualizer::backend() const { return impl_->backend; }
const std::vector<WeightInfo>& Dualizer::weights() const { return impl_->weights; }
double Dualizer::flops() const { return impl_->flops; }

std::string Dualizer::device() const {
#ifdef MODC_WITH_CUDA
    if (impl_->gpu)
        return impl_->gpu->device() + (impl_->gpu->from_cache() ? "; kernels from the cache" : "; kernels compiled") +
               (impl_->gpu->graphs() == 0   ? "; no graph"
                : impl_->gpu->graphs() == 1 ? "; one CUDA graph"
                                            : "; " + std::to_string(impl_->gpu->graphs()) + " CUDA graphs between convergence checks");
#endif
    return "cpu";
}

std::string Dualizer::device_name() const {
#ifdef MODC_WITH_CUDA
    if (impl_->gpu) return impl_->gpu->device();
#endif
    return "cpu";
}

bool Dualizer::kernels_from_cache() const {
#ifdef MODC_WITH_CUDA
    if (impl_->gpu) return impl_->gpu->from_cache();
#endif
    return false;
}

double Dualizer::last_run_ms() const {
#ifdef MODC_WITH_CUDA
    if (impl_->gpu) return impl_->gpu->last_ms();
#endif
    return 0;
}

namespace {
// Every weight reported at once, where the run cannot tell them apart (GPU, BF16 on the CPU).
void all_done(std::size_t weights, const Dualizer::WeightDone& weight_done) {
    if (weight_done)
        for (std::size_t i = 0; i < weights; ++i) weight_done(i);
}
}  // namespace

void Dualizer::run(const float* const* grads, float* const* updates, const WeightDone& weight_done) {
    impl_->check_dtype(DType::F32);
    if (impl_->backend == Backend::Cpu) return impl_->cpu32->run(grads, updates, weight_done);
    impl_->run_gpu(reinterpret_cast<const void* const*>(grads), reinterpret_cast<void* const*>(updates));
    all_done(impl_->weights.size(), weight_done);
}

void Dualizer::run(const double* const* grads, double* const* updates, const WeightDone& weight_done) {
    impl_->check_dtype(DType::F64);
    if (impl_->backend == Backend::Cpu) return impl_->cpu64->run(grads, updates, weight_done);
    impl_->run_gpu(reinterpret_cast<const void* const*>(grads), reinterpret_cast<void* const*>(updates));
    all_done(impl_->weights.size(), weight_done);
}

void Dualizer::run(const std::uint16_t* const* grads, std::uint16_t* const* updates, const WeightDone& weight_done) {
    impl_->check_dtype(DType::BF16);
    if (runs_cuda(impl_->backend))
        impl_->run_gpu(reinterpret_cast<const void* const*>(grads), reinterpret_cast<void* const*>(updates));
    else
        impl_->run_cpu_bf16(grads, updates);
    all_done(impl_->weights.size(), weight_done);
}

void Dualizer::run_device(const void* const* grads, void* const* updates, void* stream) {
    impl_->run_gpu_device(grads, updates, stream);
}

struct DualizerAccess {
    static const Dualizer::Impl& of(const Dualizer& d) { return *d.impl_; }
};

// A Cuda dualizer's runtime and caches; none without the toolkit.
#ifdef MODC_WITH_CUDA
cuda::GpuDualizer* gpu_dualizer(Dualizer& d) { return DualizerAccess::of(d).gpu.get(); }
const cuda::DiskCache* nvrtc_cache(const Dualizer& d) { return DualizerAccess::of(d).cache.get(); }
const cuda::DiskCache* host_build_cache(const Dualizer& d) { return DualizerAccess::of(d).host_cache.get(); }
long sim_calls_in_context(int device) { return cuda::sim::calls_in_context(device); }
#else
cuda::GpuDualizer* gpu_dualizer(Dualizer&) { return nullptr; }
const cuda::DiskCache* nvrtc_cache(const Dualizer&) { return nullptr; }
const cuda::DiskCache* host_build_cache(const Dualizer&) { return nullptr; }
long sim_calls_in_context(int) { return 0; }
#endif

std::string read_source(const std::string& path) {
    std::string text, error;
    if (!read_source_file(path, text, error)) throw CompileError(error);
    return text;
}

Dualizer compile_file(const std::string& path, const CompileOptions& options) {
    return compile_source_text(path, read_source(path), options);
}

namespace {

// The CUDA program of a kernel plan, loaded on the GPU impl.device with every buffer allocated.
void setup_cuda(Dualizer::Impl& impl, const kp::KernelPlan& kernel_plan) {
    // Checked first: a machine without a GPU says so, whatever else is asked.
    if (std::string why = backend_unavailable(impl.backend); !why.empty())
        throw BackendUnavailable(unavailable_message(impl.backend, why));
#ifdef MODC_WITH_CUDA
    cuda::CudaOptions co;
    co.type = impl.dtype == DType::F64 ? ElementType::F64 : ElementType::F32;
    co.storage = impl.dtype == DType::BF16 ? cuda::Storage::BF16 : cuda::Storage::Compute;
    cuda::Program program;
    try {
        program = cuda::codegen_cuda(kernel_plan, co);
    } catch (const cuda::Unsupported& e) {  // the svd schedule
        throw CompileError(e.what());
    }
    if (auto dir = cuda::DiskCache::default_dir(); !dir.empty()) {
        impl.cache = std::make_unique<cuda::DiskCache>(dir / "nvrtc");
        impl.host_cache = std::make_unique<cuda::DiskCache>(dir / "cuda-sim");
    }
    cuda::GpuOptions go;
    go.cache = impl.cache.get();
    go.simulate = impl.backend == Backend::CudaSim;
    go.host_cache = impl.host_cache.get();
    go.device = impl.device;
    try {
        impl.gpu = std::make_unique<cuda::GpuDualizer>(std::move(program), go);
    } catch (const cuda::GpuError& e) {
        throw BackendError(std::string("the CUDA backend failed: ") + e.what());
    }
#else
    (void)kernel_plan;
#endif
}

// ---- the memory budget ----

std::uint64_t physical_memory() {
    long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
}

std::string format_bytes(double bytes) {
    const char* const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) bytes /= 1024, ++u;
    char buf[64];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return buf;
}

// The bytes of the work buffers the CPU dualizer allocates for a kernel plan: mirrors the
// constructor of cpu::Dualizer and its Workspace::fit (runtime/cpu/dualizer.cpp). Each thread
// has one workspace whose buffers are as large as the largest group it runs needs; the first
// also runs the items too large to share the cores.
double cpu_work_bytes(const kp::KernelPlan& plan, double element, unsigned threads) {
    struct Workspace {
        double x = 0, a = 0, q = 0, wide = 0, singular = 0, u = 0, scratch = 0, bf16 = 0, scratchpad = 0;
        void fit(const kp::Group& g, double element, kp::Precision precision, bool alone) {
            const bool bf16_inputs = precision == kp::Precision::BF16;
            auto m = static_cast<double>(g.small()), n = static_cast<double>(g.large());
            if (!orthogonalizes(g.map)) {
                scratch = std::max(scratch, static_cast<double>(g.cols) * 8);  // column sums in double
                return;
            }
            x = std::max(x, m * n * element);
            if (kp::newton_schulz_steps(g) > 0)  // oneDNN's, from its primitive descriptors
                scratchpad = std::max(scratchpad, static_cast<double>(cpu::scratchpad_bytes(g.small(), g.large(), precision,
                                                                                             element == 8, alone ? 0 : 1)));
            a = std::max(a, m * m * element);
            if (bf16_inputs) bf16 = std::max(bf16, m * n * 2);  // the bf16 copies of the operands
            if (g.runs_gram()) q = std::max(q, m * m * element);
            for (const auto& s : g.steps)
                if (s.kind == kp::StepKind::SvdPolar) {
                    wide = std::max(wide, m * n * 8);
                    singular = std::max(singular, m * 8);
                    u = std::max(u, m * m * 8);
                }
        }
        // x and y; a, aa and b; q and t; the SVD's input, singular values, u and vt; two bf16
        // copies; oneDNN's scratchpad.
        double bytes() const { return 2 * x + 3 * a + 2 * q + 2 * wide + singular + u + scratch + 2 * bf16 + scratchpad; }
    };
    struct Item {
        std::size_t group;
        double cost;
    };
    std::vector<Item> items;
    for (std::size_t g = 0; g < plan.groups.size(); ++g) {
        const auto& group = plan.groups[g];
        double cost = kp::matrix_cost(group);
        for (std::size_t j = 0; j < group.members.size(); ++j)
            for (std::int64_t s = 0; s < (orthogonalizes(group.map) ? group.slices : 1); ++s) items.push_back({g, cost});
    }
    std::stable_sort(items.begin(), items.end(), [](const Item& l, const Item& r) { return l.cost > r.cost; });
    unsigned n = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
    double rest = 0;
    for (const auto& item : items) rest += item.cost;
    std::size_t shared = 0;
    while (shared < items.size() && items[shared].cost * n > rest) rest -= items[shared++].cost;
    if (items.size() - shared < 2) n = 1;
    if (n == 1) shared = items.size();
    Workspace first, other;
    for (std::size_t i = 0; i < items.size(); ++i) {
        first.fit(plan.groups[items[i].group], element, plan.precision, i < shared);
        if (i >= shared) other.fit(plan.groups[items[i].group], element, plan.precision, false);
    }
    return first.bytes() + (n - 1) * other.bytes();
}

// Refuses, before anything is allocated, a dualizer whose host memory would exceed the limit.
void check_memory(const kp::KernelPlan& plan, const std::vector<WeightInfo>& weights, const CompileOptions& options,
                  double extra_bytes) {
    double elements = 0;
    for (const auto& w : weights) elements += static_cast<double>(w.elements());
    const double stored = options.dtype == DType::F64 ? 8 : options.dtype == DType::BF16 ? 2 : 4;
    const double compute = options.dtype == DType::F64 ? 8 : 4;
    double work = 0;
    if (options.backend == Backend::Cpu) {
        work = cpu_work_bytes(plan, compute, options.threads);
        if (options.dtype == DType::BF16) work += 2 * elements * 4;  // f32 copies of the gradients and updates
    }
    const double tensors = 2 * elements * stored;
    const double total = work + tensors + extra_bytes;
    const std::uint64_t physical = physical_memory();
    const double limit = options.memory_limit ? static_cast<double>(options.memory_limit)
                         : physical           ? static_cast<double>(physical / 2)
                                              : 0;
    if (limit == 0 || total <= limit) return;
    std::string parts = "work buffers " + format_bytes(work) + ", gradients and updates " + format_bytes(tensors);
    if (extra_bytes > 0) parts += ", weights, optimizer state and buffers " + format_bytes(extra_bytes);
    throw CompileError("network '" + plan.network + "' needs about " + format_bytes(total) + " of memory (" + parts +
                       "), more than the limit of " + format_bytes(limit) +
                       (options.memory_limit ? "" : " (half of this machine's " + format_bytes(static_cast<double>(physical)) + ")") +
                       "; --memory-limit or CompileOptions::memory_limit sets it");
}

}  // namespace

std::unique_ptr<Compilation> front_end(const std::string& name, const std::string& text, const CompileOptions& options) {
    ElaborateOptions eo;
    eo.only_network = options.network;
    for (const auto& [key, value] : options.set) {
        auto n = parse_decimal(value.size() && value[0] == '-' ? value.substr(1) : value);
        if (!n) throw CompileError("parameter " + key + " must be a number, got '" + value + "'");
        eo.overrides[key] = value.size() && value[0] == '-' ? Rational(-*n) : *n;
    }
    // On a large stack of its own, so that a deeply nested file cannot overflow the caller's.
    std::unique_ptr<Compilation> c;
    run_with_large_stack([&] { c = compile_source(name, text, eo); });
    if (c->diags.has_errors()) throw CompileError(c->diags.render());
    if (c->plans.empty()) throw CompileError(name + ": the file defines no network");
    if (c->plans.size() > 1 && options.network.empty())
        throw CompileError(name + ": the file defines several networks; choose one");
    return c;
}

const ast::Optimizer& choose_optimizer(const Compilation& c, const std::string& name, const std::string& wanted) {
    const auto& blocks = c.file.optimizers;
    std::vector<std::string> names;
    for (const auto& o : blocks) names.push_back(o.name);
    if (blocks.empty()) throw CompileError(name + ": the file defines no optimizer block (see docs/optimizers.md)");
    if (wanted.empty()) {
        if (blocks.size() == 1) return blocks.front();
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        throw CompileError(name + ": the file defines several optimizers (" + list + "); choose one");
    }
    for (const auto& o : blocks)
        if (o.name == wanted) return o;
    std::string hint = closest_match(wanted, names);
    throw CompileError(name + ": no optimizer '" + wanted + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
}


Dualizer compile_source_text(const std::string& name, const std::string& text, const CompileOptions& options) {
    return make_dualizer(front_end(name, text, options)->plans.front(), options);
}

kp::KernelPlan lower_for(const DualPlan& plan, const CompileOptions& options) {
    const kp::Schedule* schedule = kp::find_schedule(options.schedule);
    if (!schedule) throw CompileError("unknown schedule '" + options.schedule + "'");
    std::map<std::string, const kp::Schedule*> per_leaf;
    for (const auto& [path, s] : options.leaf_schedules) {
        const kp::Schedule* found = kp::find_schedule(s);
        if (!found) throw CompileError("unknown schedule '" + s + "' for weight '" + path + "'");
        bool known = false;
        for (const auto& l : plan.leaves) known |= l.path == path;
        if (!known) throw CompileError("network '" + plan.network + "' has no weight '" + path + "'");
        per_leaf[path] = found;
    }
    return kp::lower(plan, *schedule, per_leaf,
                     kp::LowerOptions{.gram = options.gram,
                                      .precision = plan_precision(options),
                                      .gram_restart_every = runs_cuda(options.backend)});
}

DualPlan only_weights(const DualPlan& plan, const std::vector<std::string>& paths) {
    std::vector<std::string> all;
    for (const auto& l : plan.leaves) all.push_back(l.path);
    for (const auto& p : paths)
        if (std::find(all.begin(), all.end(), p) == all.end()) {
            std::string hint = closest_match(p, all);
            throw CompileError("network '" + plan.network + "' has no weight '" + p + "'" +
                               (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
        }
    DualPlan out = plan;
    out.leaves.clear();
    for (const auto& l : plan.leaves)
        if (std::find(paths.begin(), paths.end(), l.path) != paths.end()) {
            out.leaves.push_back(l);
            out.leaves.back().index = static_cast<int>(out.leaves.size() - 1);
        }
    return out;
}

// CompileOptions::device: an index, and one for the backends that run on a GPU. Whether that GPU
// exists is the runtime's to say (runtime/cuda/driver.hpp, retain_device).
static void check_device(const CompileOptions& options) {
    if (options.device < 0)
        throw CompileError("device must be a GPU's index, 0 or more, not " + std::to_string(options.device));
    if (options.device != 0 && !runs_cuda(options.backend))
        throw CompileError("device " + std::to_string(options.device) +
                           " is a GPU's index, for the cuda and cuda-sim backends; the cpu backend takes device 0 only");
}

Dualizer make_dualizer(const DualPlan& plan, const CompileOptions& options, double extra_bytes) {
    check_device(options);
    kp::KernelPlan kernel_plan = lower_for(plan, options);
    auto impl = std::make_unique<Dualizer::Impl>();
    impl->network = plan.network;
    impl->schedule = kernel_plan.schedule;
    impl->dtype = options.dtype;
    impl->precision = kernel_plan.precision == kp::Precision::BF16   ? Precision::BF16
                      : kernel_plan.precision == kp::Precision::TF32 ? Precision::TF32
                                                                     : Precision::F32;
    impl->backend = options.backend;
    impl->device = options.device;
    for (const auto& l : plan.leaves) impl->weights.push_back({l.path, l.atom, l.shape, to_double(l.target), l.scale.value()});
    // A machine without a GPU says so first, whatever else is asked (setup_cuda).
    if (runs_cuda(options.backend))
        if (std::string why = backend_unavailable(options.backend); !why.empty())
            throw BackendUnavailable(unavailable_message(options.backend, why));
    if (options.backend == Backend::Cpu && kernel_plan.precision == kp::Precision::BF16)
        if (std::string why = cpu::bf16_unavailable(); !why.empty())
            throw BackendUnavailable("precision bf16 cannot run on this CPU: " + why + "; use --precision f32");
    check_memory(kernel_plan, impl->weights, options, extra_bytes);
    impl->flops = kp::flops(kernel_plan);
    if (runs_cuda(options.backend)) {
        setup_cuda(*impl, kernel_plan);
    } else if (options.dtype == DType::F64) {
        impl->cpu64 = std::make_unique<cpu::Dualizer<double>>(kernel_plan, codegen_llvm(kernel_plan, ElementType::F64), options.threads);
    } else {
        if (options.dtype == DType::BF16)
            for (const auto& w : impl->weights) {
                impl->wide_grads.emplace_back(static_cast<std::size_t>(w.elements()));
                impl->wide_updates.emplace_back(static_cast<std::size_t>(w.elements()));
            }
        impl->cpu32 = std::make_unique<cpu::Dualizer<float>>(kernel_plan, codegen_llvm(kernel_plan, ElementType::F32), options.threads);
    }
    return Dualizer(std::move(impl));
}

}  // namespace modc
