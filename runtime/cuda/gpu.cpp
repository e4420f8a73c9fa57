#include "runtime/cuda/gpu.hpp"

#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <vector>

#include "support/diagnostics.hpp"
#include "runtime/cuda/driver.hpp"
#include "runtime/cuda/nvrtc.hpp"
#include "runtime/cuda/sim/host_build.hpp"
#include "runtime/cuda/sim/sim.hpp"

namespace modc::cuda {

#define MODC_STR_(x) #x
#define MODC_STR(x) MODC_STR_(x)

// The cuBLAS functions, resolved like the driver's (driver.hpp).
#define MODC_CUBLAS_FUNCTIONS(X)                                                                            \
    X(cublasCreate) X(cublasDestroy) X(cublasSetStream) X(cublasSetWorkspace) X(cublasSsyrk) X(cublasDsyrk)  \
    X(cublasSsymm) X(cublasDsymm) X(cublasSgemmStridedBatched) X(cublasDgemmStridedBatched)                 \
    X(cublasGetStatusString)

#define MODC_DECLARE(f) decltype(&::f) f = nullptr;

struct Cublas {
    MODC_CUBLAS_FUNCTIONS(MODC_DECLARE)
    // Overloaded in C++ by the header (an inline form taking cudaDataType as the compute type),
    // so its type is spelled out: the C symbol's.
    cublasStatus_t (*cublasGemmStridedBatchedEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                                 const void*, const void*, cudaDataType, int, long long, const void*,
                                                 cudaDataType, int, long long, const void*, void*, cudaDataType, int, long long,
                                                 int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
};

#undef MODC_DECLARE

namespace sim {
MODC_CUBLAS_FUNCTIONS(MODC_SIM_DECLARE)
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                          const void*, cudaDataType, int, long long, const void*, cudaDataType, int,
                                          long long, const void*, void*, cudaDataType, int, long long, int,
                                          cublasComputeType_t, cublasGemmAlgo_t);
}  // namespace sim

namespace {

// The simulator's cuBLAS, as a table like the library's.
const Cublas& sim_cublas() {
    static const Cublas b = [] {
        Cublas t;
#define MODC_SIM_TAKE(f) t.f = &sim::f;
        MODC_CUBLAS_FUNCTIONS(MODC_SIM_TAKE)
#undef MODC_SIM_TAKE
        t.cublasGemmStridedBatchedEx = &sim::cublasGemmStridedBatchedEx;
        return t;
    }();
    return b;
}

void* open_first(const std::vector<std::string>& names, std::string& error) {
    for (const auto& n : names) {
        if (void* lib = ::dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL)) return lib;
        if (error.empty()) error = ::dlerror();
    }
    return nullptr;
}

std::vector<std::string> names_from(const char* env, std::vector<std::string> names) {
    if (const char* path = std::getenv(env); path && *path) names.insert(names.begin(), path);
    return names;
}

struct Loaded {
    const Driver* driver = nullptr;
    std::unique_ptr<Cublas> cublas;
    std::string driver_error, cublas_error;
};

const Loaded& loaded() {
    static const Loaded l = [] {
        Loaded out;
        std::string error;
        out.driver = load_driver(&out.driver_error);
        error.clear();
        std::vector<std::string> names;
#ifdef MODC_CUDA_VERSION_MAJOR
        names.push_back("libcublas.so." MODC_STR(MODC_CUDA_VERSION_MAJOR));
#endif
        for (const char* n : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) names.push_back(n);
        if (void* lib = open_first(names_from("MODC_LIBCUBLAS", names), error)) {
            auto b = std::make_unique<Cublas>();
            std::string missing;
#define MODC_LOAD(f)                                                             \
    b->f = reinterpret_cast<decltype(b->f)>(::dlsym(lib, MODC_STR(f)));          \
    if (!b->f) missing += std::string(missing.empty() ? "" : ", ") + MODC_STR(f);
            MODC_CUBLAS_FUNCTIONS(MODC_LOAD)
            MODC_LOAD(cublasGemmStridedBatchedEx)
#undef MODC_LOAD
            if (missing.empty())
                out.cublas = std::move(b);
            else
                out.cublas_error = "the cuBLAS library found is too old: it lacks " + missing;
        } else {
            out.cublas_error = "cuBLAS could not be loaded (" + error + ")";
        }
        return out;
    }();
    return l;
}

}  // namespace

std::string gpu_unavailable() {
    const Loaded& l = loaded();
    if (!l.driver) return l.driver_error;
    if (std::string why = probe_driver(*l.driver, nullptr); !why.empty()) return why;
    if (!l.cublas) return l.cublas_error;
    std::string why;
    if (!load_nvrtc(&why)) return why;
    return "";
}

std::string sim_unavailable() {
    std::string why;
    sim::find_host_compiler(&why);
    return why;
}

struct GpuDualizer::Impl {
    Program program;
    GpuOptions options;
    const Driver& cu;
    const Cublas& bl;
    CUdevice device = 0;
    CUcontext context = nullptr;
    CUmodule module = nullptr;
    CUstream stream = nullptr;
    cublasHandle_t handle = nullptr;
    CUevent start = nullptr, stop = nullptr;
    CUevent done = nullptr;  // recorded after each run: the next one, on any stream, waits for it
    // The ops as the host runs them: ranges of ops, each one CUDA graph (when graphs are on),
    // and between them the Converged checks, which may jump ahead.
    struct Segment {
        std::size_t begin = 0, end = 0;      // ops [begin, end); a check is the one op at begin
        const Converged* check = nullptr;
        CUgraph graph = nullptr;
        CUgraphExec exec = nullptr;
    };
    std::vector<Segment> segments;
    std::vector<std::uint32_t> flags;  // a check's converged flags, read back
    std::map<std::string, CUfunction> functions;
    std::array<CUdeviceptr, kWorkBuffers> work{};
    CUdeviceptr workspace = 0;
    std::vector<CUdeviceptr> grads, updates;
    std::vector<std::size_t> leaf_bytes;
    std::string name;
    bool cached = false;
    mutable double last_ms = 0;
    mutable bool timing_pending = false;  // a device run's events, read when last_ms() is asked

    Impl(Program p, const GpuOptions& o, const Driver& d, const Cublas& b)
        : program(std::move(p)), options(o), cu(d), bl(b) {}

    ~Impl() {
        if (context) release_device(cu, context, device, [this] { release(); });
    }

    // Everything made on the device (release_device makes its context current).
    void release() {
        if (done) cu.cuEventSynchronize(done);  // a device run may still use the buffers
        for (auto& seg : segments) {
            if (seg.exec) cu.cuGraphExecDestroy(seg.exec);
            if (seg.graph) cu.cuGraphDestroy(seg.graph);
        }
        if (handle) bl.cublasDestroy(handle);
        for (CUdeviceptr p : work)
            if (p) cu.cuMemFree(p);
        for (CUdeviceptr p : grads)
            if (p) cu.cuMemFree(p);
        for (CUdeviceptr p : updates)
            if (p) cu.cuMemFree(p);
        if (workspace) cu.cuMemFree(workspace);
        if (start) cu.cuEventDestroy(start);
        if (stop) cu.cuEventDestroy(stop);
        if (done) cu.cuEventDestroy(done);
        if (stream) cu.cuStreamDestroy(stream);
        if (module) cu.cuModuleUnload(module);
    }

    void check(CUresult r, const char* what) const { cuda::check(cu, r, what); }
    void check(cublasStatus_t s, const char* what) const {
        if (s != CUBLAS_STATUS_SUCCESS) throw GpuError(std::string(what) + " failed: " + bl.cublasGetStatusString(s));
    }

    void setup() {
        context = retain_device(cu, options.device, &device);
        ContextScope scope(cu, context);
        char buffer[256] = {};
        check(cu.cuDeviceGetName(buffer, sizeof buffer - 1, device), "cuDeviceGetName");
        int major = 0, minor = 0;
        check(cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "cuDeviceGetAttribute");
        check(cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "cuDeviceGetAttribute");

        LoadedModule kernels = load_module(cu, device, program.source, program.network + ".cu", program.kernels, options);
        module = kernels.module;
        cached = kernels.from_cache;
        name = std::string(buffer) + ", sm_" + std::to_string(major * 10 + minor);
        for (const auto& k : program.kernels) {
            CUfunction f = nullptr;
            check(cu.cuModuleGetFunction(&f, module, k.c_str()), ("cuModuleGetFunction(" + k + ")").c_str());
            functions[k] = f;
        }

        check(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        check(cu.cuEventCreate(&start, CU_EVENT_DEFAULT), "cuEventCreate");
        check(cu.cuEventCreate(&stop, CU_EVENT_DEFAULT), "cuEventCreate");
        check(cu.cuEventCreate(&done, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        for (std::size_t b = 0; b < work.size(); ++b)
            if (program.bytes[b] > 0) check(cu.cuMemAlloc(&work[b], static_cast<std::size_t>(program.bytes[b])), "cuMemAlloc");
        grads.assign(program.leaf_count, 0);
        updates.assign(program.leaf_count, 0);
        leaf_bytes.assign(program.leaf_count, 0);
        for (std::size_t i = 0; i < program.leaf_count; ++i) {
            leaf_bytes[i] = static_cast<std::size_t>(program.leaf_elements[i] * program.tensor_element_size());
            if (leaf_bytes[i] == 0) continue;
            check(cu.cuMemAlloc(&grads[i], leaf_bytes[i]), "cuMemAlloc");
            check(cu.cuMemAlloc(&updates[i], leaf_bytes[i]), "cuMemAlloc");
        }

        check(bl.cublasCreate(&handle), "cublasCreate");
        check(bl.cublasSetStream(handle, stream), "cublasSetStream");
        // A workspace of our own, so that cuBLAS allocates nothing while the graph is captured.
        const std::size_t workspace_bytes = std::size_t(32) << 20;
        check(cu.cuMemAlloc(&workspace, workspace_bytes), "cuMemAlloc");
        check(bl.cublasSetWorkspace(handle, reinterpret_cast<void*>(workspace), workspace_bytes), "cublasSetWorkspace");

        split_into_segments();
        // One run outside the graphs first: cuBLAS and the module finish loading there.
        run_segments(stream);
        check(cu.cuStreamSynchronize(stream), "the first run");
        if (options.graph)
            for (auto& seg : segments) {
                if (seg.check) continue;
                check(cu.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
                try {
                    enqueue(seg.begin, seg.end, stream);
                } catch (...) {
                    CUgraph broken = nullptr;
                    cu.cuStreamEndCapture(stream, &broken);
                    if (broken) cu.cuGraphDestroy(broken);
                    throw;
                }
                check(cu.cuStreamEndCapture(stream, &seg.graph), "cuStreamEndCapture");
                check(cu.cuGraphInstantiate(&seg.exec, seg.graph, 0), "cuGraphInstantiate");
            }
    }

    // Segments end at each Converged op (a segment of its own) and at each op one may resume at.
    void split_into_segments() {
        const auto& ops = program.ops;
        std::vector<bool> starts(ops.size() + 1, false);
        starts[0] = true;
        for (std::size_t i = 0; i < ops.size(); ++i)
            if (const auto* c = std::get_if<Converged>(&ops[i].what)) {
                starts[i] = starts[i + 1] = true;
                starts.at(c->resume) = true;
                flags.resize(std::max(flags.size(), static_cast<std::size_t>(c->count)));
            }
        for (std::size_t i = 0; i < ops.size();) {
            std::size_t end = i + 1;
            while (end < ops.size() && !starts[end]) ++end;
            Segment seg;
            seg.begin = i;
            seg.end = end;
            seg.check = std::get_if<Converged>(&ops[i].what);
            segments.push_back(seg);
            i = end;
        }
    }

    // The whole run on stream s: each segment's graph (or its ops), and the checks between. A
    // graph launches on any stream, whichever it was captured on.
    void run_segments(CUstream s) {
        for (std::size_t i = 0; i < segments.size();) {
            const Segment& seg = segments[i];
            if (!seg.check) {
                if (seg.exec)
                    check(cu.cuGraphLaunch(seg.exec, s), "cuGraphLaunch");
                else
                    enqueue(seg.begin, seg.end, s);
                ++i;
                continue;
            }
            const auto count = static_cast<std::size_t>(seg.check->count);
            check(cu.cuMemcpyDtoHAsync(flags.data(), address(seg.check->done), count * sizeof(std::uint32_t), s),
                  "cuMemcpyDtoHAsync");
            check(cu.cuStreamSynchronize(s), "a convergence check");
            bool all = std::all_of(flags.begin(), flags.begin() + static_cast<std::ptrdiff_t>(count),
                                   [](std::uint32_t f) { return f != 0; });
            ++i;
            if (all)
                while (i < segments.size() && segments[i].begin < seg.check->resume) ++i;
        }
    }

    CUdeviceptr address(const Operand& o) const {
        switch (o.buffer) {
            case Buffer::Grad: return grads.at(static_cast<std::size_t>(o.leaf));
            case Buffer::Update: return updates.at(static_cast<std::size_t>(o.leaf));
            default: return work[static_cast<std::size_t>(o.buffer)] + static_cast<CUdeviceptr>(o.offset);
        }
    }

    // tf32 and bf16: tensor cores, f32 accumulation (cuda_program.hpp, Matmul).
    void matmul_ex(const Matmul& m) const {
        MODC_ASSERT(m.kind == Matmul::Kind::Gemm && program.type == ElementType::F32, "GemmEx is an f32 gemm");
        const float alpha = static_cast<float>(m.alpha), beta = static_cast<float>(m.beta);
        const bool bf16 = m.precision == kp::Precision::BF16;
        const cudaDataType in = bf16 ? CUDA_R_16BF : CUDA_R_32F;
        check(bl.cublasGemmStridedBatchedEx(handle, m.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, m.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                            m.m, m.n, m.k, &alpha, reinterpret_cast<const void*>(address(m.a)), in, m.lda,
                                            m.stride_a, reinterpret_cast<const void*>(address(m.b)), in, m.ldb, m.stride_b, &beta,
                                            reinterpret_cast<void*>(address(m.c)), holds_bf16(m.c, program.storage) ? CUDA_R_16BF : CUDA_R_32F,
                                            m.ldc, m.stride_c, m.batch,
                                            bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
              "cublasGemmStridedBatchedEx");
    }

    template <class T>
    void matmul(const Matmul& m) const {
        if (m.precision != kp::Precision::F32) return matmul_ex(m);
        constexpr bool f32 = std::is_same_v<T, float>;
        const T alpha = static_cast<T>(m.alpha), beta = static_cast<T>(m.beta);
        auto p = [&](const Operand& o) { return reinterpret_cast<T*>(address(o)); };
        cublasFillMode_t uplo = m.lower ? CUBLAS_FILL_MODE_LOWER : CUBLAS_FILL_MODE_UPPER;
        cublasOperation_t ta = m.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = m.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        switch (m.kind) {
            case Matmul::Kind::Syrk:
                if constexpr (f32)
                    check(bl.cublasSsyrk(handle, uplo, ta, m.n, m.k, &alpha, p(m.a), m.lda, &beta, p(m.c), m.ldc), "cublasSsyrk");
                else
                    check(bl.cublasDsyrk(handle, uplo, ta, m.n, m.k, &alpha, p(m.a), m.lda, &beta, p(m.c), m.ldc), "cublasDsyrk");
                break;
            case Matmul::Kind::Symm: {
                cublasSideMode_t side = m.right ? CUBLAS_SIDE_RIGHT : CUBLAS_SIDE_LEFT;
                if constexpr (f32)
                    check(bl.cublasSsymm(handle, side, uplo, m.m, m.n, &alpha, p(m.a), m.lda, p(m.b), m.ldb, &beta, p(m.c), m.ldc),
                          "cublasSsymm");
                else
                    check(bl.cublasDsymm(handle, side, uplo, m.m, m.n, &alpha, p(m.a), m.lda, p(m.b), m.ldb, &beta, p(m.c), m.ldc),
                          "cublasDsymm");
                break;
            }
            case Matmul::Kind::Gemm:
                if constexpr (f32)
                    check(bl.cublasSgemmStridedBatched(handle, ta, tb, m.m, m.n, m.k, &alpha, p(m.a), m.lda, m.stride_a, p(m.b),
                                                       m.ldb, m.stride_b, &beta, p(m.c), m.ldc, m.stride_c, m.batch),
                          "cublasSgemmStridedBatched");
                else
                    check(bl.cublasDgemmStridedBatched(handle, ta, tb, m.m, m.n, m.k, &alpha, p(m.a), m.lda, m.stride_a, p(m.b),
                                                       m.ldb, m.stride_b, &beta, p(m.c), m.ldc, m.stride_c, m.batch),
                          "cublasDgemmStridedBatched");
                break;
        }
    }

    // Ops [begin, end) of the program, in order, on stream s (no Converged op among them).
    void enqueue(std::size_t begin, std::size_t end, CUstream s) const {
        check(bl.cublasSetStream(handle, s), "cublasSetStream");
        std::vector<CUdeviceptr> values;
        std::vector<void*> params;
        for (std::size_t i = begin; i < end; ++i) {
            const Op& op = program.ops[i];
            MODC_ASSERT(!std::holds_alternative<Converged>(op.what), "a Converged op inside a segment");
            if (const auto* l = std::get_if<Launch>(&op.what)) {
                values.clear();
                params.clear();
                for (const auto& a : l->args) values.push_back(address(a));
                for (auto& v : values) params.push_back(&v);
                check(cu.cuLaunchKernel(functions.at(l->kernel), l->grid[0], l->grid[1], l->grid[2], l->block[0], l->block[1],
                                        l->block[2], 0, s, params.data(), nullptr),
                      ("cuLaunchKernel(" + l->kernel + ")").c_str());
            } else if (program.type == ElementType::F32) {
                matmul<float>(std::get<Matmul>(op.what));
            } else {
                matmul<double>(std::get<Matmul>(op.what));
            }
        }
    }

    // Starts a run on stream s: after the previous run, whatever its stream (they share the buffers).
    void begin_run(CUstream s) {
        check(cu.cuStreamWaitEvent(s, done, 0), "cuStreamWaitEvent");
    }

    // The run proper on stream s, between the timing events.
    void run_on(CUstream s) {
        check(cu.cuEventRecord(start, s), "cuEventRecord");
        run_segments(s);
        check(cu.cuEventRecord(stop, s), "cuEventRecord");
    }

    void run(const void* const* in, void* const* out) {
        ContextScope scope(cu, context);
        begin_run(stream);
        for (std::size_t i = 0; i < program.leaf_count; ++i)
            if (leaf_bytes[i]) check(cu.cuMemcpyHtoDAsync(grads[i], in[i], leaf_bytes[i], stream), "cuMemcpyHtoDAsync");
        run_on(stream);
        for (std::size_t i = 0; i < program.leaf_count; ++i)
            if (leaf_bytes[i]) check(cu.cuMemcpyDtoHAsync(out[i], updates[i], leaf_bytes[i], stream), "cuMemcpyDtoHAsync");
        check(cu.cuEventRecord(done, stream), "cuEventRecord");
        check(cu.cuStreamSynchronize(stream), "the run");
        timing_pending = true;
    }

    // The graphs were captured with the run's own buffers as their arguments; copying the
    // caller's tensors in and out on the device costs two passes over them, far less than the
    // run, and keeps one instantiation for any pointers (re-pointing the captured kernels, and
    // the cuBLAS calls whose kernels modc does not see, would mean updating every graph).
    void run_device(const void* const* in, void* const* out, CUstream s) {
        ContextScope scope(cu, context);
        begin_run(s);
        for (std::size_t i = 0; i < program.leaf_count; ++i)
            if (leaf_bytes[i])
                check(cu.cuMemcpyDtoDAsync(grads[i], reinterpret_cast<CUdeviceptr>(in[i]), leaf_bytes[i], s), "cuMemcpyDtoDAsync");
        run_on(s);
        for (std::size_t i = 0; i < program.leaf_count; ++i)
            if (leaf_bytes[i])
                check(cu.cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(out[i]), updates[i], leaf_bytes[i], s), "cuMemcpyDtoDAsync");
        check(cu.cuEventRecord(done, s), "cuEventRecord");
        timing_pending = true;
    }

    double elapsed_ms() const {
        if (timing_pending) {
            ContextScope scope(cu, context);
            check(cu.cuEventSynchronize(stop), "cuEventSynchronize");
            float ms = 0;
            check(cu.eventElapsedTime(&ms, start, stop), "cuEventElapsedTime");
            last_ms = ms;
            timing_pending = false;
        }
        return last_ms;
    }
};

GpuDualizer::GpuDualizer(Program program, const GpuOptions& options) {
    if (options.simulate) {
        impl_ = std::make_unique<Impl>(std::move(program), options, sim::driver(), sim_cublas());
        impl_->setup();
        return;
    }
    const Loaded& l = loaded();
    if (!l.driver) throw GpuError(l.driver_error);
    if (!l.cublas) throw GpuError(l.cublas_error);
    impl_ = std::make_unique<Impl>(std::move(program), options, *l.driver, *l.cublas);
    impl_->setup();
}

GpuDualizer::~GpuDualizer() = default;

const Program& GpuDualizer::program() const { return impl_->program; }
std::string GpuDualizer::device() const { return impl_->name; }
std::size_t GpuDualizer::graphs() const {
    return static_cast<std::size_t>(
        std::count_if(impl_->segments.begin(), impl_->segments.end(), [](const auto& seg) { return seg.exec != nullptr; }));
}
bool GpuDualizer::from_cache() const { return impl_->cached; }
void GpuDualizer::run(const void* const* grads, void* const* updates) { impl_->run(grads, updates); }
void GpuDualizer::run_device(const void* const* grads, void* const* updates, CUstream stream) {
    impl_->run_device(grads, updates, stream);
}
double GpuDualizer::last_ms() const { return impl_->elapsed_ms(); }

}  // namespace modc::cuda
