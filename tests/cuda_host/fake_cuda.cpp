// A stand-in for libcuda.so.1 and libcublas.so, so that runtime/cuda/gpu.cpp can be run end to
// end on a machine without a GPU (tests/unit/test_cuda.cpp points MODC_LIBCUDA and
// MODC_LIBCUBLAS at this library):
//   - "device" memory is host memory, filled with NaN bytes when allocated;
//   - a module is the generated CUDA compiled for the host with cuda_host.h: the library named
//     by $MODC_FAKE_KERNELS, whose kernels' parameter counts are listed, one "name count" per
//     line, in $MODC_FAKE_KERNELS.params (a cubin does not say, and cuLaunchKernel is not told);
//     cuModuleLoadData checks that it was given an ELF image (a cubin) and otherwise ignores it;
//   - cuBLAS calls are CBLAS calls in column-major mode with the same parameters, and syrk
//     leaves NaN in the triangle it does not compute;
//   - stream capture records the launches and cuBLAS calls; a graph replays them in order;
//   - an event records the host time, so elapsed times are the host's time for the calls.
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
#include <string>
#include <vector>

namespace {

using Call = std::function<void()>;

struct Function {
    void (*entry)();
    int params;
};

struct State {
    bool capturing = false;
    // The functions of each loaded module, freed when it is unloaded.
    std::map<void*, std::vector<std::unique_ptr<Function>>> functions;
    std::vector<Call> captured;
    void* kernels = nullptr;
    std::map<std::string, int> params;
    void (*launch)(void (*)(), const unsigned*, const unsigned*, int, void* const*) = nullptr;
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
    s.kernels = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!s.kernels) return CUDA_ERROR_FILE_NOT_FOUND;
    s.launch = reinterpret_cast<decltype(s.launch)>(::dlsym(s.kernels, "modc_host_launch"));
    std::ifstream in(std::string(path) + ".params");
    std::string name;
    int count = 0;
    while (in >> name >> count) s.params[name] = count;
    if (!s.launch || s.params.empty()) return CUDA_ERROR_INVALID_IMAGE;
    *module = reinterpret_cast<CUmodule>(s.kernels);
    return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule module) {
    void* handle = reinterpret_cast<void*>(module);
    state().functions.erase(handle);
    ::dlclose(handle);  // one per cuModuleLoadData's dlopen
    return CUDA_SUCCESS;
}
CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
    void* entry = ::dlsym(reinterpret_cast<void*>(module), name);
    auto count = state().params.find(name);
    if (!entry || count == state().params.end()) return CUDA_ERROR_NOT_FOUND;
    auto& owned = state().functions[reinterpret_cast<void*>(module)];
    owned.push_back(std::make_unique<Function>(Function{reinterpret_cast<void (*)()>(entry), count->second}));
    *function = reinterpret_cast<CUfunction>(owned.back().get());
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
CUresult cuMemcpyHtoDAsync(CUdeviceptr to, const void* from, std::size_t bytes, CUstream) {
    if (state().capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    std::memcpy(reinterpret_cast<void*>(to), from, bytes);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoHAsync(void* to, CUdeviceptr from, std::size_t bytes, CUstream) {
    if (state().capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    std::memcpy(to, reinterpret_cast<const void*>(from), bytes);
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
CUresult cuStreamSynchronize(CUstream) { return state().capturing ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS; }
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
CUresult cuGraphLaunch(CUgraphExec exec, CUstream) {
    if (state().capturing) return CUDA_ERROR_ILLEGAL_STATE;
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
                        unsigned int bz, unsigned int shared, CUstream, void** params, void** extra) {
    if (shared != 0 || extra != nullptr || !params) return CUDA_ERROR_INVALID_VALUE;
    const Function* function = reinterpret_cast<const Function*>(f);
    // Parameters are read when the launch is issued, as the driver does.
    std::vector<void*> args;
    for (int i = 0; i < function->params; ++i) args.push_back(*static_cast<void**>(params[i]));
    std::vector<unsigned> grid{gx, gy, gz}, block{bx, by, bz};
    issue([function, args, grid, block] {
        state().launch(function->entry, grid.data(), block.data(), static_cast<int>(args.size()), args.data());
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
CUresult cuEventRecord(CUevent event, CUstream) {
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
