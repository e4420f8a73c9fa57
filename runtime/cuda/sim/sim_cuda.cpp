// The cuda-sim backend's driver and cuBLAS: runtime/cuda/gpu.cpp and gpu_stepper.cpp run on
// these functions, in place of libcuda.so.1's and libcublas.so's, on a machine without a GPU
// (sim.hpp hands them over as the same function tables; nothing is exported under CUDA's names):
//   - "device" memory is host memory, filled with NaN bytes when allocated;
//   - a module is the generated CUDA compiled for the host (host_build.hpp), given to
//     cuModuleLoadData as module_image(): the shared object is loaded from memory, and each
//     kernel is called through the entry MODC_SIM_KERNEL made for it, which reads the launch's
//     arguments as the kernel's own parameter types; a cubin is refused;
//   - cuBLAS calls are CBLAS calls in column-major mode with the same parameters, and syrk
//     leaves NaN in the triangle it does not compute;
//   - stream capture records the launches and cuBLAS calls; a graph replays them in order;
//   - an event records the host time, so elapsed times are the host's time for the calls;
//   - there are MODC_CUDA_SIM_DEVICES devices (default 2), each with its primary context; as the
//     driver does, each thread has a stack of current contexts, and a call that works on a device
//     needs a context current: streams, modules and cuBLAS handles belong to the device current
//     when they were made, and using one in another device's context is refused. Every such call
//     is counted against the device of the context it ran in (calls_in_context, for the tests);
//   - every call is done when it is issued, so streams and events order nothing; but the
//     simulator counts, per stream, the work enqueued on it and the synchronisations, which a
//     test reads with stream_counts (to see that a device run used the caller's stream, and did
//     not wait for it).
// One process-wide state: the simulator runs one thing at a time.
// Only what gpu.cpp uses is here; every function is declared from the toolkit's headers
// (sim.hpp), so its signature is the one gpu.cpp's tables hold.
#include <cblas.h>
#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/cuda/sim/sim.hpp"
#include "runtime/cuda/sim/tensor_cores.h"

namespace modc::cuda::sim {

namespace {

using Call = std::function<void()>;

struct Function {
    int device = 0;  // its module's
    void (*run)(void* const*) = nullptr;  // the kernel's entry (MODC_SIM_KERNEL)
    void (*launch)(void (*)(void* const*), const unsigned*, const unsigned*, void* const*) = nullptr;
    std::vector<unsigned long> sizes;     // of its parameters
};

// A loaded module: the kernels library and the functions taken from it.
struct Module {
    int device = 0;
    void* library = nullptr;
    std::vector<std::unique_ptr<Function>> functions;
};

struct Counts {
    long enqueued = 0, synchronized = 0;
};

struct State {
    bool capturing = false;
    std::vector<Call> captured;
    std::map<CUstream, Counts> streams;
    std::map<CUstream, int> stream_devices;  // of the streams made here (the callers' own are not known)
    std::map<int, long> calls;               // by the device whose context they ran in
};

State& state() {
    static State s;
    return s;
}

// Runs a call now, or records it while a stream is being captured.
void issue(Call call) {
    if (state().capturing)
        state().captured.push_back(std::move(call));
    else
        call();
}

struct Graph {
    std::vector<Call> calls;
};

// A device's primary context is the address of its entry here.
constexpr int kMaxDevices = 16;
int contexts[kMaxDevices];

int device_count() {
    static const int n = [] {
        const char* value = std::getenv("MODC_CUDA_SIM_DEVICES");
        const int v = value && *value ? std::atoi(value) : 2;
        return std::clamp(v, 1, kMaxDevices);
    }();
    return n;
}

thread_local std::vector<CUcontext> current;  // this thread's context stack, the current one last

// The device of the current context; -1 when none is current.
int current_device() { return current.empty() ? -1 : static_cast<int>(static_cast<int*>(static_cast<void*>(current.back())) - contexts); }

// A call that works on a device: it needs a current context, of `owner`'s device when it uses
// something made on one (owner >= 0). Counted against the context's device.
CUresult in_context(int owner = -1) {
    const int device = current_device();
    if (device < 0) return CUDA_ERROR_INVALID_CONTEXT;
    if (owner >= 0 && owner != device) return CUDA_ERROR_INVALID_HANDLE;
    ++state().calls[device];
    return CUDA_SUCCESS;
}

// The device of a stream made here; -1 for a caller's (or the null stream).
int owner_of(CUstream stream) {
    auto it = state().stream_devices.find(stream);
    return it == state().stream_devices.end() ? -1 : it->second;
}

#define MODC_SIM_IN_CONTEXT(owner)                                          \
    if (CUresult modc_sim_r = in_context(owner); modc_sim_r != CUDA_SUCCESS) \
    return modc_sim_r

}  // namespace

// ---- the driver API ----

CUresult cuInit(unsigned int) { return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int* version) {
    *version = CUDA_VERSION;
    return CUDA_SUCCESS;
}
CUresult cuGetErrorString(CUresult, const char** text) {
    *text = "an error of the CUDA simulator";
    return CUDA_SUCCESS;
}
CUresult cuGetErrorName(CUresult, const char** name) {
    *name = "CUDA_ERROR_SIM";
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetCount(int* count) {
    *count = device_count();
    return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice* device, int ordinal) {
    if (ordinal < 0 || ordinal >= device_count()) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char* name, int length, CUdevice) {
    std::strncpy(name, "modc CUDA simulator (the host)", static_cast<std::size_t>(length));
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice) {
    if (attribute == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) *value = 9;
    else if (attribute == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR) *value = 0;
    else return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
    if (device < 0 || device >= device_count()) return CUDA_ERROR_INVALID_DEVICE;
    *context = reinterpret_cast<CUcontext>(&contexts[device]);
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease(CUdevice) { return CUDA_SUCCESS; }
CUresult cuCtxPushCurrent(CUcontext context) {
    void* c = context;
    if (c < static_cast<void*>(contexts) || c >= static_cast<void*>(contexts + device_count())) return CUDA_ERROR_INVALID_CONTEXT;
    current.push_back(context);
    return CUDA_SUCCESS;
}
CUresult cuCtxPopCurrent(CUcontext* context) {
    if (current.empty()) return CUDA_ERROR_INVALID_CONTEXT;
    if (context) *context = current.back();
    current.pop_back();
    return CUDA_SUCCESS;
}

namespace {
const char kMagic[8] = {'m', 'o', 'd', 'c', 's', 'i', 'm', '1'};

// The shared object in `image` (module_image's layout), opened from memory.
void* open_image(const void* image) {
    std::uint64_t size = 0;
    std::memcpy(&size, static_cast<const char*>(image) + sizeof kMagic, sizeof size);
    const char* bytes = static_cast<const char*>(image) + sizeof kMagic + sizeof size;
    int fd = ::memfd_create("modc-sim-kernels", MFD_CLOEXEC);
    if (fd < 0) return nullptr;
    void* library = nullptr;
    auto path = [](int f) { return "/proc/self/fd/" + std::to_string(f); };
    // dlopen knows a library by its name, and one loaded earlier may still hold this fd's name
    // (its descriptor closed since; C++ inline variables keep it from unloading): hold such a
    // name's descriptor open and take another, so this is a load of its own.
    std::vector<int> held;
    while (void* old = ::dlopen(path(fd).c_str(), RTLD_NOW | RTLD_NOLOAD)) {
        ::dlclose(old);
        held.push_back(fd);
        if ((fd = ::dup(fd)) < 0) break;
    }
    if (fd >= 0 && ::write(fd, bytes, size) == static_cast<ssize_t>(size))
        library = ::dlopen(path(fd).c_str(), RTLD_NOW | RTLD_LOCAL);
    for (int h : held) ::close(h);
    if (fd >= 0) ::close(fd);  // a loaded library keeps its mapping
    return library;
}
}  // namespace

std::string module_image(const std::string& library) {
    const std::uint64_t size = library.size();
    std::string image(kMagic, sizeof kMagic);
    image.append(reinterpret_cast<const char*>(&size), sizeof size);
    return image + library;
}

CUresult cuModuleLoadData(CUmodule* module, const void* image) {
    MODC_SIM_IN_CONTEXT(-1);
    if (std::memcmp(image, kMagic, sizeof kMagic) != 0) return CUDA_ERROR_INVALID_IMAGE;  // a cubin, or PTX
    auto m = std::make_unique<Module>();
    m->device = current_device();
    m->library = open_image(image);
    if (!m->library) return CUDA_ERROR_INVALID_IMAGE;
    if (!::dlsym(m->library, "modc_sim_launch")) {
        ::dlclose(m->library);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *module = reinterpret_cast<CUmodule>(m.release());
    return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule module) {
    auto* m = reinterpret_cast<Module*>(module);
    MODC_SIM_IN_CONTEXT(m->device);
    ::dlclose(m->library);
    delete m;
    return CUDA_SUCCESS;
}
CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
    auto* m = reinterpret_cast<Module*>(module);
    MODC_SIM_IN_CONTEXT(m->device);
    auto f = std::make_unique<Function>();
    f->device = m->device;
    f->run = reinterpret_cast<decltype(f->run)>(::dlsym(m->library, ("modc_sim_run_" + std::string(name)).c_str()));
    auto args = reinterpret_cast<int (*)(unsigned long*)>(::dlsym(m->library, ("modc_sim_args_" + std::string(name)).c_str()));
    f->launch = reinterpret_cast<decltype(f->launch)>(::dlsym(m->library, "modc_sim_launch"));
    if (!f->run || !args || !f->launch) return CUDA_ERROR_NOT_FOUND;
    f->sizes.resize(256);
    f->sizes.resize(static_cast<std::size_t>(args(f->sizes.data())));
    m->functions.push_back(std::move(f));
    *function = reinterpret_cast<CUfunction>(m->functions.back().get());
    return CUDA_SUCCESS;
}

CUresult cuMemAlloc(CUdeviceptr* pointer, std::size_t bytes) {
    MODC_SIM_IN_CONTEXT(-1);
    void* p = std::malloc(bytes);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    std::memset(p, 0xff, bytes);  // NaN, whatever the type
    *pointer = reinterpret_cast<CUdeviceptr>(p);
    return CUDA_SUCCESS;
}
CUresult cuMemFree(CUdeviceptr pointer) {
    MODC_SIM_IN_CONTEXT(-1);
    std::free(reinterpret_cast<void*>(pointer));
    return CUDA_SUCCESS;
}
CUresult cuMemcpyHtoDAsync(CUdeviceptr to, const void* from, std::size_t bytes, CUstream stream) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (state().capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    ++state().streams[stream].enqueued;
    std::memcpy(reinterpret_cast<void*>(to), from, bytes);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoHAsync(void* to, CUdeviceptr from, std::size_t bytes, CUstream stream) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (state().capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    ++state().streams[stream].enqueued;
    std::memcpy(to, reinterpret_cast<const void*>(from), bytes);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoDAsync(CUdeviceptr to, CUdeviceptr from, std::size_t bytes, CUstream stream) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (!state().capturing) ++state().streams[stream].enqueued;
    issue([=] { std::memmove(reinterpret_cast<void*>(to), reinterpret_cast<const void*>(from), bytes); });
    return CUDA_SUCCESS;
}
CUresult cuMemsetD8Async(CUdeviceptr to, unsigned char value, std::size_t bytes, CUstream stream) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (!state().capturing) ++state().streams[stream].enqueued;
    issue([=] { std::memset(reinterpret_cast<void*>(to), value, bytes); });
    return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream* stream, unsigned int) {
    MODC_SIM_IN_CONTEXT(-1);
    *stream = reinterpret_cast<CUstream>(new int(0));
    state().stream_devices[*stream] = current_device();
    return CUDA_SUCCESS;
}
CUresult cuStreamDestroy(CUstream stream) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    state().stream_devices.erase(stream);
    delete reinterpret_cast<int*>(stream);
    return CUDA_SUCCESS;
}
CUresult cuStreamSynchronize(CUstream stream) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (state().capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    ++state().streams[stream].synchronized;
    return CUDA_SUCCESS;
}
CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    return event && flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
CUresult cuStreamBeginCapture(CUstream stream, CUstreamCaptureMode) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (state().capturing) return CUDA_ERROR_ILLEGAL_STATE;
    state().capturing = true;
    state().captured.clear();
    return CUDA_SUCCESS;
}
CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (!state().capturing) return CUDA_ERROR_ILLEGAL_STATE;
    state().capturing = false;
    *graph = reinterpret_cast<CUgraph>(new Graph{std::move(state().captured)});
    state().captured.clear();
    return CUDA_SUCCESS;
}
CUresult cuGraphInstantiate(CUgraphExec* exec, CUgraph graph, unsigned long long) {
    *exec = reinterpret_cast<CUgraphExec>(new Graph(*reinterpret_cast<Graph*>(graph)));
    return CUDA_SUCCESS;
}
CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (state().capturing) return CUDA_ERROR_ILLEGAL_STATE;
    ++state().streams[stream].enqueued;
    for (const auto& call : reinterpret_cast<Graph*>(exec)->calls) call();
    return CUDA_SUCCESS;
}
CUresult cuGraphExecDestroy(CUgraphExec exec) {
    delete reinterpret_cast<Graph*>(exec);
    return CUDA_SUCCESS;
}
CUresult cuGraphDestroy(CUgraph graph) {
    delete reinterpret_cast<Graph*>(graph);
    return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                        unsigned int bz, unsigned int shared, CUstream stream, void** params, void** extra) {
    if (shared != 0 || extra != nullptr || !params) return CUDA_ERROR_INVALID_VALUE;
    if (gx * gy * gz == 0 || bx * by * bz == 0) return CUDA_ERROR_INVALID_VALUE;
    MODC_SIM_IN_CONTEXT(reinterpret_cast<const Function*>(f)->device);
    if (owner_of(stream) >= 0 && owner_of(stream) != current_device()) return CUDA_ERROR_INVALID_HANDLE;
    if (!state().capturing) ++state().streams[stream].enqueued;
    const Function* function = reinterpret_cast<const Function*>(f);
    // The arguments are copied when the launch is issued, as the driver does.
    std::vector<std::size_t> offsets;
    std::string bytes;
    for (std::size_t i = 0; i < function->sizes.size(); ++i) {
        offsets.push_back((bytes.size() + 7) / 8 * 8);
        bytes.resize(offsets.back());
        bytes.append(static_cast<const char*>(params[i]), function->sizes[i]);
    }
    std::array<unsigned, 3> grid{gx, gy, gz}, block{bx, by, bz};
    issue([function, offsets, bytes, grid, block]() mutable {
        std::vector<void*> args;
        for (std::size_t o : offsets) args.push_back(bytes.data() + o);
        function->launch(function->run, grid.data(), block.data(), args.data());
    });
    return CUDA_SUCCESS;
}

// An event is the host time at which the "stream" reached it, so the elapsed time between two
// is the host time the calls between them took (what `modc bench --backend cuda` reports).
using EventTime = std::chrono::steady_clock::time_point;
CUresult cuEventCreate(CUevent* event, unsigned int) {
    MODC_SIM_IN_CONTEXT(-1);
    *event = reinterpret_cast<CUevent>(new EventTime());
    return CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent event, CUstream stream) {
    MODC_SIM_IN_CONTEXT(owner_of(stream));
    if (!state().capturing) ++state().streams[stream].enqueued;
    auto* time = reinterpret_cast<EventTime*>(event);
    issue([time] { *time = std::chrono::steady_clock::now(); });
    return CUDA_SUCCESS;
}
CUresult cuEventSynchronize(CUevent) { return CUDA_SUCCESS; }
CUresult cuEventDestroy(CUevent event) {
    delete reinterpret_cast<EventTime*>(event);
    return CUDA_SUCCESS;
}
CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent stop) {
    *ms = std::chrono::duration<float, std::milli>(*reinterpret_cast<EventTime*>(stop) -
                                                   *reinterpret_cast<EventTime*>(start))
              .count();
    return CUDA_SUCCESS;
}

// ---- cuBLAS ----

// A handle holds the device current when it was made; cuBLAS works in that device's context.
cublasStatus_t cublasCreate(cublasHandle_t* handle) {
    if (in_context() != CUDA_SUCCESS) return CUBLAS_STATUS_NOT_INITIALIZED;
    *handle = reinterpret_cast<cublasHandle_t>(new int(current_device()));
    return CUBLAS_STATUS_SUCCESS;
}
namespace {
bool in_context_of(cublasHandle_t handle) { return in_context(*reinterpret_cast<int*>(handle)) == CUDA_SUCCESS; }
}  // namespace
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete reinterpret_cast<int*>(handle);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t) {
    return in_context_of(handle) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, std::size_t bytes) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    return workspace && bytes ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
const char* cublasGetStatusString(cublasStatus_t) { return "an error of the simulated cuBLAS"; }

long calls_in_context(int device) { return state().calls[device]; }

bool context_current() { return current_device() >= 0; }

void stream_counts(CUstream stream, long* enqueued, long* synchronized) {
    const Counts c = state().streams[stream];
    *enqueued = c.enqueued;
    *synchronized = c.synchronized;
}

namespace {

CBLAS_UPLO uplo(cublasFillMode_t m) { return m == CUBLAS_FILL_MODE_LOWER ? CblasLower : CblasUpper; }
CBLAS_TRANSPOSE op(cublasOperation_t o) { return o == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }
CBLAS_SIDE side(cublasSideMode_t s) { return s == CUBLAS_SIDE_LEFT ? CblasLeft : CblasRight; }

// cuBLAS leaves the other triangle of a syrk's result as it was: make it unusable.
template <class T>
void poison_other_triangle(cublasFillMode_t fill, int n, T* c, int ldc) {
    for (int col = 0; col < n; ++col)
        for (int row = 0; row < n; ++row)
            if (fill == CUBLAS_FILL_MODE_LOWER ? row < col : row > col) c[row + col * ldc] = std::numeric_limits<T>::quiet_NaN();
}

}  // namespace

cublasStatus_t cublasSsyrk(cublasHandle_t handle, cublasFillMode_t fill, cublasOperation_t trans, int n, int k, const float* alpha,
                           const float* a, int lda, const float* beta, float* c, int ldc) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    float al = *alpha, be = *beta;  // host pointer mode: the values are read at the call
    issue([=] {
        cblas_ssyrk(CblasColMajor, uplo(fill), op(trans), n, k, al, a, lda, be, c, ldc);
        poison_other_triangle(fill, n, c, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDsyrk(cublasHandle_t handle, cublasFillMode_t fill, cublasOperation_t trans, int n, int k, const double* alpha,
                           const double* a, int lda, const double* beta, double* c, int ldc) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    double al = *alpha, be = *beta;
    issue([=] {
        cblas_dsyrk(CblasColMajor, uplo(fill), op(trans), n, k, al, a, lda, be, c, ldc);
        poison_other_triangle(fill, n, c, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSsymm(cublasHandle_t handle, cublasSideMode_t s, cublasFillMode_t fill, int m, int n, const float* alpha,
                           const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    float al = *alpha, be = *beta;
    issue([=] { cblas_ssymm(CblasColMajor, side(s), uplo(fill), m, n, al, a, lda, b, ldb, be, c, ldc); });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDsymm(cublasHandle_t handle, cublasSideMode_t s, cublasFillMode_t fill, int m, int n, const double* alpha,
                           const double* a, int lda, const double* b, int ldb, const double* beta, double* c, int ldc) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    double al = *alpha, be = *beta;
    issue([=] { cblas_dsymm(CblasColMajor, side(s), uplo(fill), m, n, al, a, lda, b, ldb, be, c, ldc); });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                         const float* alpha, const float* a, int lda, long long sa, const float* b, int ldb,
                                         long long sb, const float* beta, float* c, int ldc, long long sc, int batch) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    float al = *alpha, be = *beta;
    issue([=] {
        for (int i = 0; i < batch; ++i)
            cblas_sgemm(CblasColMajor, op(ta), op(tb), m, n, k, al, a + i * sa, lda, b + i * sb, ldb, be, c + i * sc, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                         const double* alpha, const double* a, int lda, long long sa, const double* b, int ldb,
                                         long long sb, const double* beta, double* c, int ldc, long long sc, int batch) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    double al = *alpha, be = *beta;
    issue([=] {
        for (int i = 0; i < batch; ++i)
            cblas_dgemm(CblasColMajor, op(ta), op(tb), m, n, k, al, a + i * sa, lda, b + i * sb, ldb, be, c + i * sc, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}

// tf32 and bf16 GEMMs on tensor cores: tensor_cores.h rounds the inputs as the GPU does.
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                                     int k, const void* alpha, const void* a, cudaDataType at, int lda,
                                                     long long sa, const void* b, cudaDataType bt, int ldb, long long sb,
                                                     const void* beta, void* c, cudaDataType ct, int ldc, long long sc,
                                                     int batch, cublasComputeType_t compute, cublasGemmAlgo_t) {
    if (!in_context_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    // Only what modc asks for: f32 accumulation; f32 inputs and C (tf32), or bf16 inputs and C in bf16 or f32.
    const bool bf16 = at == CUDA_R_16BF && bt == CUDA_R_16BF && compute == CUBLAS_COMPUTE_32F &&
                      (ct == CUDA_R_16BF || ct == CUDA_R_32F);
    const bool tf32 = at == CUDA_R_32F && bt == CUDA_R_32F && ct == CUDA_R_32F && compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    if (!(bf16 || tf32)) return CUBLAS_STATUS_NOT_SUPPORTED;
    const bool c_bf16 = ct == CUDA_R_16BF;
    float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
    auto in = bf16 ? modc_fake::Inputs::BF16 : modc_fake::Inputs::TF32;
    issue([=] {
        modc_fake::gemm_ex(op(ta) == CblasTrans, op(tb) == CblasTrans, m, n, k, al, a, lda, sa, b, ldb, sb, be, c, c_bf16, ldc,
                           sc, batch, in);
    });
    return CUBLAS_STATUS_SUCCESS;
}

// ---- the tables ----

const Driver& driver() {
    static const Driver d = [] {
        Driver t;
#define MODC_SIM_TAKE(f) t.f = &f;
        MODC_CU_FUNCTIONS(MODC_SIM_TAKE)
#undef MODC_SIM_TAKE
        t.eventElapsedTime = &cuEventElapsedTime;
        t.simulated = true;
        return t;
    }();
    return d;
}

}  // namespace modc::cuda::sim
