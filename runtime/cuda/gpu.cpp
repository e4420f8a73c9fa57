#include "runtime/cuda/gpu.hpp"

#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <vector>

#include "support/diagnostics.hpp"
#include "runtime/cuda/nvrtc.hpp"

namespace modc::cuda {

#define MODC_STR_(x) #x
#define MODC_STR(x) MODC_STR_(x)

// Each name is resolved under the versioned symbol its header maps it to (cuMemAlloc is
// cuMemAlloc_v2), so the function-pointer types are exactly the header's.
#define MODC_CU_FUNCTIONS(X)                                                                                 \
    X(cuInit) X(cuDriverGetVersion) X(cuGetErrorString) X(cuGetErrorName) X(cuDeviceGetCount) X(cuDeviceGet)  \
    X(cuDeviceGetName) X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease)      \
    X(cuCtxSetCurrent) X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction) X(cuMemAlloc)            \
    X(cuMemFree) X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuStreamCreate) X(cuStreamDestroy)               \
    X(cuStreamSynchronize) X(cuStreamBeginCapture) X(cuStreamEndCapture) X(cuGraphInstantiate)                \
    X(cuGraphLaunch) X(cuGraphExecDestroy) X(cuGraphDestroy) X(cuLaunchKernel) X(cuEventCreate)              \
    X(cuEventRecord) X(cuEventSynchronize) X(cuEventDestroy)

#define MODC_CUBLAS_FUNCTIONS(X)                                                                            \
    X(cublasCreate) X(cublasDestroy) X(cublasSetStream) X(cublasSetWorkspace) X(cublasSsyrk) X(cublasDsyrk)  \
    X(cublasSsymm) X(cublasDsymm) X(cublasSgemmStridedBatched) X(cublasDgemmStridedBatched)                 \
    X(cublasGetStatusString)

#define MODC_DECLARE(f) decltype(&::f) f = nullptr;

struct Driver {
    MODC_CU_FUNCTIONS(MODC_DECLARE)
    // cuEventElapsedTime is cuEventElapsedTime_v2 in CUDA 13 headers; older drivers have only the
    // first, with the same signature.
    decltype(&::cuEventElapsedTime) eventElapsedTime = nullptr;
};

struct Cublas {
    MODC_CUBLAS_FUNCTIONS(MODC_DECLARE)
};

#undef MODC_DECLARE

namespace {

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
    std::unique_ptr<Driver> driver;
    std::unique_ptr<Cublas> cublas;
    std::string driver_error, cublas_error;
};

const Loaded& loaded() {
    static const Loaded l = [] {
        Loaded out;
        std::string error;
        if (void* lib = open_first(names_from("MODC_LIBCUDA", {"libcuda.so.1", "libcuda.so"}), error)) {
            auto d = std::make_unique<Driver>();
            std::string missing;
#define MODC_LOAD(f)                                                             \
    d->f = reinterpret_cast<decltype(d->f)>(::dlsym(lib, MODC_STR(f)));          \
    if (!d->f) missing += std::string(missing.empty() ? "" : ", ") + MODC_STR(f);
            MODC_CU_FUNCTIONS(MODC_LOAD)
#undef MODC_LOAD
            for (const char* name : {MODC_STR(cuEventElapsedTime), "cuEventElapsedTime"})
                if (!d->eventElapsedTime)
                    d->eventElapsedTime = reinterpret_cast<decltype(d->eventElapsedTime)>(::dlsym(lib, name));
            if (!d->eventElapsedTime) missing += std::string(missing.empty() ? "" : ", ") + "cuEventElapsedTime";
            if (missing.empty())
                out.driver = std::move(d);
            else
                out.driver_error = "the CUDA driver found is too old: it lacks " + missing;
        } else {
            out.driver_error = "no CUDA driver was found (" + error + ")";
        }
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

std::string cu_error(const Driver& d, CUresult r) {
    const char* name = nullptr;
    const char* text = nullptr;
    d.cuGetErrorName(r, &name);
    d.cuGetErrorString(r, &text);
    return std::string(name ? name : "CUDA error " + std::to_string(static_cast<int>(r))) + (text ? std::string(": ") + text : "");
}

// Initialises the driver and counts the devices: empty, or why the GPU cannot be used.
std::string probe_driver(const Driver& d, int* count) {
    static const std::string why = [&d] {
        CUresult r = d.cuInit(0);
        if (r != CUDA_SUCCESS) return "the CUDA driver could not be initialised (" + cu_error(d, r) + ")";
        int n = 0;
        r = d.cuDeviceGetCount(&n);
        if (r != CUDA_SUCCESS) return "the CUDA driver cannot list devices (" + cu_error(d, r) + ")";
        if (n == 0) return std::string("there is no CUDA device");
        return std::string();
    }();
    if (count && why.empty()) d.cuDeviceGetCount(count);
    return why;
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
    double last_ms = 0;

    Impl(Program p, const GpuOptions& o, const Driver& d, const Cublas& b)
        : program(std::move(p)), options(o), cu(d), bl(b) {}

    ~Impl() {
        if (context) cu.cuCtxSetCurrent(context);
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
        if (stream) cu.cuStreamDestroy(stream);
        if (module) cu.cuModuleUnload(module);
        if (context) cu.cuDevicePrimaryCtxRelease(device);
    }

    void check(CUresult r, const char* what) const {
        if (r != CUDA_SUCCESS) throw GpuError(std::string(what) + " failed: " + cu_error(cu, r));
    }
    void check(cublasStatus_t s, const char* what) const {
        if (s != CUBLAS_STATUS_SUCCESS) throw GpuError(std::string(what) + " failed: " + bl.cublasGetStatusString(s));
    }

    void setup() {
        int count = 0;
        if (std::string why = probe_driver(cu, &count); !why.empty()) throw GpuError(why);
        if (options.device < 0 || options.device >= count)
            throw GpuError("there is no CUDA device " + std::to_string(options.device) + " (" + std::to_string(count) + " found)");
        check(cu.cuDeviceGet(&device, options.device), "cuDeviceGet");
        char buffer[256] = {};
        check(cu.cuDeviceGetName(buffer, sizeof buffer - 1, device), "cuDeviceGetName");
        int major = 0, minor = 0;
        check(cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "cuDeviceGetAttribute");
        check(cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "cuDeviceGetAttribute");
        check(cu.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        check(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent");

        // Kernels: a cubin for the device's architecture, or PTX for the newest one NVRTC
        // knows below it (the driver then compiles it) when NVRTC does not know the device.
        std::string why;
        const Nvrtc* nvrtc = load_nvrtc(&why);
        if (!nvrtc) throw GpuError(why);
        int arch = major * 10 + minor, best = 0;
        for (int a : nvrtc_archs(*nvrtc))
            if (a <= arch) best = std::max(best, a);
        if (best == 0) throw GpuError("NVRTC " + nvrtc_version(*nvrtc) + " cannot compile for sm_" + std::to_string(arch));
        CompileRequest request;
        request.source = program.source;
        request.name = program.network + ".cu";
        request.arch = (best == arch ? "sm_" : "compute_") + std::to_string(best);
        Compiled compiled = compile(*nvrtc, request, options.cache);
        if (!compiled.ok)
            throw GpuError("NVRTC could not compile the generated CUDA code for " + request.arch + ":\n" + compiled.log);
        cached = compiled.from_cache;
        name = std::string(buffer) + ", sm_" + std::to_string(arch);
        const std::string& image = compiled.cubin.empty() ? compiled.ptx : compiled.cubin;
        check(cu.cuModuleLoadData(&module, image.c_str()), "cuModuleLoadData");
        for (const auto& k : program.kernels) {
            CUfunction f = nullptr;
            check(cu.cuModuleGetFunction(&f, module, k.c_str()), ("cuModuleGetFunction(" + k + ")").c_str());
            functions[k] = f;
        }

        check(cu.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        check(cu.cuEventCreate(&start, CU_EVENT_DEFAULT), "cuEventCreate");
        check(cu.cuEventCreate(&stop, CU_EVENT_DEFAULT), "cuEventCreate");
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
        run_segments();
        check(cu.cuStreamSynchronize(stream), "the first run");
        if (options.graph)
            for (auto& seg : segments) {
                if (seg.check) continue;
                check(cu.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
                try {
                    enqueue(seg.begin, seg.end);
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

    // The whole run on the stream: each segment's graph (or its ops), and the checks between.
    void run_segments() {
        for (std::size_t s = 0; s < segments.size();) {
            const Segment& seg = segments[s];
            if (!seg.check) {
                if (seg.exec)
                    check(cu.cuGraphLaunch(seg.exec, stream), "cuGraphLaunch");
                else
                    enqueue(seg.begin, seg.end);
                ++s;
                continue;
            }
            const auto count = static_cast<std::size_t>(seg.check->count);
            check(cu.cuMemcpyDtoHAsync(flags.data(), address(seg.check->done), count * sizeof(std::uint32_t), stream),
                  "cuMemcpyDtoHAsync");
            check(cu.cuStreamSynchronize(stream), "a convergence check");
            bool all = std::all_of(flags.begin(), flags.begin() + static_cast<std::ptrdiff_t>(count),
                                   [](std::uint32_t f) { return f != 0; });
            ++s;
            if (all)
                while (s < segments.size() && segments[s].begin < seg.check->resume) ++s;
        }
    }

    CUdeviceptr address(const Operand& o) const {
        switch (o.buffer) {
            case Buffer::Grad: return grads.at(static_cast<std::size_t>(o.leaf));
            case Buffer::Update: return updates.at(static_cast<std::size_t>(o.leaf));
            default: return work[static_cast<std::size_t>(o.buffer)] + static_cast<CUdeviceptr>(o.offset);
        }
    }

    template <class T>
    void matmul(const Matmul& m) const {
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

    // Ops [begin, end) of the program, in order, on the stream (no Converged op among them).
    void enqueue(std::size_t begin, std::size_t end) const {
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
                                        l->block[2], 0, stream, params.data(), nullptr),
                      ("cuLaunchKernel(" + l->kernel + ")").c_str());
            } else if (program.type == ElementType::F32) {
                matmul<float>(std::get<Matmul>(op.what));
            } else {
                matmul<double>(std::get<Matmul>(op.what));
            }
        }
    }

    void run(const void* const* in, void* const* out) {
        check(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        for (std::size_t i = 0; i < program.leaf_count; ++i)
            if (leaf_bytes[i]) check(cu.cuMemcpyHtoDAsync(grads[i], in[i], leaf_bytes[i], stream), "cuMemcpyHtoDAsync");
        check(cu.cuEventRecord(start, stream), "cuEventRecord");
        run_segments();
        check(cu.cuEventRecord(stop, stream), "cuEventRecord");
        for (std::size_t i = 0; i < program.leaf_count; ++i)
            if (leaf_bytes[i]) check(cu.cuMemcpyDtoHAsync(out[i], updates[i], leaf_bytes[i], stream), "cuMemcpyDtoHAsync");
        check(cu.cuStreamSynchronize(stream), "the run");
        float ms = 0;
        check(cu.eventElapsedTime(&ms, start, stop), "cuEventElapsedTime");
        last_ms = ms;
    }
};

GpuDualizer::GpuDualizer(Program program, const GpuOptions& options) {
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
double GpuDualizer::last_ms() const { return impl_->last_ms; }

}  // namespace modc::cuda
