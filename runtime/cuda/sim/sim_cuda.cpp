// A stand-in for libcuda.so.1 and libcublas.so, so that runtime/cuda/gpu.cpp can be run end to
// end on a machine without a GPU (tests/unit/test_cuda.cpp points MODC_LIBCUDA and
// MODC_LIBCUBLAS at this library):
//   - "device" memory is host memory, filled with NaN bytes when allocated;
//   - a module is the generated CUDA compiled for the host with cuda_host.h: the library named
//     by $MODC_FAKE_KERNELS (one for every module a process loads: the dualizer's kernels and an
//     optimizer's step kernels together), whose kernels' parameters are listed in
//     $MODC_FAKE_KERNELS.params (a cubin does not say, and cuLaunchKernel is not told), one per
//     line: "name count" for a kernel of `count` pointers, called directly, or "name pointers
//     doubles" for one that takes doubles too (the step kernels), called through the wrapper
//     modc_host_<name>(void** pointers, double* doubles) the library must export;
//     cuModuleLoadData checks that it was given an ELF image (a cubin) and otherwise ignores it;
//   - cuBLAS calls are CBLAS calls in column-major mode with the same parameters, and syrk
//     leaves NaN in the triangle it does not compute;
//   - stream capture records the launches and cuBLAS calls; a graph replays them in order;
//   - an event records the host time, so elapsed times are the host's time for the calls;
//   - every call is done when it is issued, so streams and events order nothing; but the fake
//     counts, per stream, the work enqueued on it and the synchronisations, which a test reads
//     with modc_fake_stream_counts (to see that a device run used the caller's stream, and did
//     not wait for it).
// Only what gpu.cpp uses is here; every function is compiled against the toolkit's headers, so
// its name and signature are the ones gpu.cpp resolves.
#include <cblas.h>
#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>

#include <chrono>
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

#include "tensor_cores.h"

namespace {

using Call = std::function<void()>;

struct Function {
    void (*entry)();  // the kernel, or for one with doubles its wrapper
    int pointers;
    int doubles = -1;  // -1: the kernel takes pointers only, and is called directly
};

struct Params {
    int pointers = 0, doubles = -1;
};

// A loaded module: the kernels library (dlopen'd once per load) and the functions taken from it.
struct Module {
    void* library = nullptr;
    std::vector<std::unique_ptr<Function>> functions;
};

struct Counts {
    long enqueued = 0, synchronized = 0;
};

struct State {
    bool capturing = false;
    std::vector<Call> captured;
    std::map<std::string, Params> params;
    void (*launch)(void (*)(), const unsigned*, const unsigned*, int, void* const*) = nullptr;
    std::map<CUstream, Counts> streams;
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

int context_token = 0;

}  // namespace

extern "C" {

CUresult cuInit(unsigned int) { return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int* version) {
    *version = CUDA_VERSION;
    return CUDA_SUCCESS;
}
CUresult cuGetErrorString(CUresult, const char** text) {
    *text = "an error of the fake CUDA driver";
    return CUDA_SUCCESS;
}
CUresult cuGetErrorName(CUresult, const char** name) {
    *name = "CUDA_ERROR_FAKE";
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetCount(int* count) {
    *count = 1;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice* device, int ordinal) {
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char* name, int length, CUdevice) {
    std::strncpy(name, "modc fake GPU (the host)", static_cast<std::size_t>(length));
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice) {
    if (attribute == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) *value = 9;
    else if (attribute == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR) *value = 0;
    else return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice) {
    *context = reinterpret_cast<CUcontext>(&context_token);
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease(CUdevice) { return CUDA_SUCCESS; }
CUresult cuCtxSetCurrent(CUcontext context) {
    return context == reinterpret_cast<CUcontext>(&context_token) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

CUresult cuModuleLoadData(CUmodule* module, const void* image) {
    if (std::memcmp(image, "\x7f" "ELF", 4) != 0) return CUDA_ERROR_INVALID_IMAGE;  // a cubin is an ELF file
    const char* path = std::getenv("MODC_FAKE_KERNELS");
    if (!path) return CUDA_ERROR_FILE_NOT_FOUND;
    State& s = state();
    auto m = std::make_unique<Module>();
    m->library = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->library) return CUDA_ERROR_FILE_NOT_FOUND;
    s.launch = reinterpret_cast<decltype(s.launch)>(::dlsym(m->library, "modc_host_launch"));
    std::ifstream in(std::string(path) + ".params");
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string name;
        Params p;
        if (fields >> name >> p.pointers) {
            if (!(fields >> p.doubles)) p.doubles = -1;
            s.params[name] = p;
        }
    }
    if (!s.launch || s.params.empty()) {
        ::dlclose(m->library);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *module = reinterpret_cast<CUmodule>(m.release());
    return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule module) {
    auto* m = reinterpret_cast<Module*>(module);
    ::dlclose(m->library);  // one per cuModuleLoadData's dlopen
    delete m;
    return CUDA_SUCCESS;
}
CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
    auto* m = reinterpret_cast<Module*>(module);
    auto p = state().params.find(name);
    if (p == state().params.end()) return CUDA_ERROR_NOT_FOUND;
    const bool wrapped = p->second.doubles >= 0;
    void* entry = ::dlsym(m->library, wrapped ? ("modc_host_" + std::string(name)).c_str() : name);
    if (!entry) return CUDA_ERROR_NOT_FOUND;
    m->functions.push_back(
        std::make_unique<Function>(Function{reinterpret_cast<void (*)()>(entry), p->second.pointers, p->second.doubles}));
    *function = reinterpret_cast<CUfunction>(m->functions.back().get());
    return CUDA_SUCCESS;
}

CUresult cuMemAlloc(CUdeviceptr* pointer, std::size_t bytes) {
    void* p = std::malloc(bytes);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    std::memset(p, 0xff, bytes);  // NaN, whatever the type
    *pointer = reinterpret_cast<CUdeviceptr>(p);
    return CUDA_SUCCESS;
}
CUresult cuMemFree(CUdeviceptr pointer) {
    std::free(reinterpret_cast<void*>(pointer));
    return CUDA_SUCCESS;
}
CUresult cuMemcpyHtoDAsync(CUdeviceptr to, const void* from, std::size_t bytes, CUstream stream) {
    if (state().capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    ++state().streams[stream].enqueued;
    std::memcpy(reinterpret_cast<void*>(to), from, bytes);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoHAsync(void* to, CUdeviceptr from, std::size_t bytes, CUstream stream) {
    if (state().capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    ++state().streams[stream].enqueued;
    std::memcpy(to, reinterpret_cast<const void*>(from), bytes);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoDAsync(CUdeviceptr to, CUdeviceptr from, std::size_t bytes, CUstream stream) {
    if (!state().capturing) ++state().streams[stream].enqueued;
    issue([=] { std::memmove(reinterpret_cast<void*>(to), reinterpret_cast<const void*>(from), bytes); });
    return CUDA_SUCCESS;
}
CUresult cuMemsetD8Async(CUdeviceptr to, unsigned char value, std::size_t bytes, CUstream stream) {
    if (!state().capturing) ++state().streams[stream].enqueued;
    issue([=] { std::memset(reinterpret_cast<void*>(to), value, bytes); });
    return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream* stream, unsigned int) {
    *stream = reinterpret_cast<CUstream>(new int(0));
    return CUDA_SUCCESS;
}
CUresult cuStreamDestroy(CUstream stream) {
    delete reinterpret_cast<int*>(stream);
    return CUDA_SUCCESS;
}
CUresult cuStreamSynchronize(CUstream stream) {
    if (state().capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    ++state().streams[stream].synchronized;
    return CUDA_SUCCESS;
}
CUresult cuStreamWaitEvent(CUstream, CUevent event, unsigned int flags) {
    return event && flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
CUresult cuStreamBeginCapture(CUstream, CUstreamCaptureMode) {
    if (state().capturing) return CUDA_ERROR_ILLEGAL_STATE;
    state().capturing = true;
    state().captured.clear();
    return CUDA_SUCCESS;
}
CUresult cuStreamEndCapture(CUstream, CUgraph* graph) {
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
    if (!state().capturing) ++state().streams[stream].enqueued;
    const Function* function = reinterpret_cast<const Function*>(f);
    // Parameters are read when the launch is issued, as the driver does.
    std::vector<void*> args;
    for (int i = 0; i < function->pointers; ++i) args.push_back(*static_cast<void**>(params[i]));
    std::vector<double> doubles;
    for (int i = 0; i < function->doubles; ++i) doubles.push_back(*static_cast<double*>(params[function->pointers + i]));
    doubles.push_back(0);  // never empty
    std::vector<unsigned> grid{gx, gy, gz}, block{bx, by, bz};
    issue([function, args, doubles, grid, block]() mutable {
        if (function->doubles < 0) {
            state().launch(function->entry, grid.data(), block.data(), static_cast<int>(args.size()), args.data());
        } else {
            void* wrapped[] = {args.data(), doubles.data()};
            state().launch(function->entry, grid.data(), block.data(), 2, wrapped);
        }
    });
    return CUDA_SUCCESS;
}

// An event is the host time at which the "stream" reached it, so the elapsed time between two
// is the host time the calls between them took (what `modc bench --backend cuda` reports).
using EventTime = std::chrono::steady_clock::time_point;
CUresult cuEventCreate(CUevent* event, unsigned int) {
    *event = reinterpret_cast<CUevent>(new EventTime());
    return CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent event, CUstream stream) {
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

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
    *handle = reinterpret_cast<cublasHandle_t>(new int(0));
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    delete reinterpret_cast<int*>(handle);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void* workspace, std::size_t bytes) {
    return workspace && bytes ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
const char* cublasGetStatusString(cublasStatus_t) { return "an error of the fake cuBLAS"; }

// The fake's own: the work enqueued on `stream` and its synchronisations so far.
void modc_fake_stream_counts(CUstream stream, long* enqueued, long* synchronized) {
    const Counts c = state().streams[stream];
    *enqueued = c.enqueued;
    *synchronized = c.synchronized;
}

}  // extern "C"

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

extern "C" {

cublasStatus_t cublasSsyrk(cublasHandle_t, cublasFillMode_t fill, cublasOperation_t trans, int n, int k, const float* alpha,
                           const float* a, int lda, const float* beta, float* c, int ldc) {
    float al = *alpha, be = *beta;  // host pointer mode: the values are read at the call
    issue([=] {
        cblas_ssyrk(CblasColMajor, uplo(fill), op(trans), n, k, al, a, lda, be, c, ldc);
        poison_other_triangle(fill, n, c, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDsyrk(cublasHandle_t, cublasFillMode_t fill, cublasOperation_t trans, int n, int k, const double* alpha,
                           const double* a, int lda, const double* beta, double* c, int ldc) {
    double al = *alpha, be = *beta;
    issue([=] {
        cblas_dsyrk(CblasColMajor, uplo(fill), op(trans), n, k, al, a, lda, be, c, ldc);
        poison_other_triangle(fill, n, c, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSsymm(cublasHandle_t, cublasSideMode_t s, cublasFillMode_t fill, int m, int n, const float* alpha,
                           const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
    float al = *alpha, be = *beta;
    issue([=] { cblas_ssymm(CblasColMajor, side(s), uplo(fill), m, n, al, a, lda, b, ldb, be, c, ldc); });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDsymm(cublasHandle_t, cublasSideMode_t s, cublasFillMode_t fill, int m, int n, const double* alpha,
                           const double* a, int lda, const double* b, int ldb, const double* beta, double* c, int ldc) {
    double al = *alpha, be = *beta;
    issue([=] { cblas_dsymm(CblasColMajor, side(s), uplo(fill), m, n, al, a, lda, b, ldb, be, c, ldc); });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                         const float* alpha, const float* a, int lda, long long sa, const float* b, int ldb,
                                         long long sb, const float* beta, float* c, int ldc, long long sc, int batch) {
    float al = *alpha, be = *beta;
    issue([=] {
        for (int i = 0; i < batch; ++i)
            cblas_sgemm(CblasColMajor, op(ta), op(tb), m, n, k, al, a + i * sa, lda, b + i * sb, ldb, be, c + i * sc, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                         const double* alpha, const double* a, int lda, long long sa, const double* b, int ldb,
                                         long long sb, const double* beta, double* c, int ldc, long long sc, int batch) {
    double al = *alpha, be = *beta;
    issue([=] {
        for (int i = 0; i < batch; ++i)
            cblas_dgemm(CblasColMajor, op(ta), op(tb), m, n, k, al, a + i * sa, lda, b + i * sb, ldb, be, c + i * sc, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"

// tf32 and bf16 GEMMs on tensor cores: tensor_cores.h rounds the inputs as the GPU does.
extern "C" cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                                     int k, const void* alpha, const void* a, cudaDataType at, int lda,
                                                     long long sa, const void* b, cudaDataType bt, int ldb, long long sb,
                                                     const void* beta, void* c, cudaDataType ct, int ldc, long long sc,
                                                     int batch, cublasComputeType_t compute, cublasGemmAlgo_t) {
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
