// runtime/cuda/driver: the CUDA driver API (libcuda.so.1), opened at run time with dlopen so
// that modc builds and starts where it is missing. Shared by the dualizer (gpu.cpp) and the
// optimizer step (gpu_stepper.cpp); internal to runtime/cuda (it includes <cuda.h>).
#pragma once
#include <cuda.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/cuda/gpu.hpp"  // GpuError

namespace modc::cuda {

// Each name is resolved under the versioned symbol its header maps it to (cuMemAlloc is
// cuMemAlloc_v2), so the function-pointer types are exactly the header's.
#define MODC_CU_FUNCTIONS(X)                                                                                          \
    X(cuInit) X(cuDriverGetVersion) X(cuGetErrorString) X(cuGetErrorName) X(cuDeviceGetCount) X(cuDeviceGet)          \
    X(cuDeviceGetName) X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease)               \
    X(cuCtxPushCurrent) X(cuCtxPopCurrent) X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction) X(cuMemAlloc) \
    X(cuMemFree) X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemcpyDtoDAsync) X(cuMemsetD8Async)                    \
    X(cuStreamCreate) X(cuStreamDestroy) X(cuStreamSynchronize) X(cuStreamWaitEvent) X(cuStreamBeginCapture)          \
    X(cuStreamEndCapture) X(cuGraphInstantiate) X(cuGraphLaunch) X(cuGraphExecDestroy) X(cuGraphDestroy)              \
    X(cuLaunchKernel) X(cuEventCreate) X(cuEventRecord) X(cuEventSynchronize) X(cuEventDestroy)

#define MODC_DECLARE_CU(f) decltype(&::f) f = nullptr;
struct Driver {
    MODC_CU_FUNCTIONS(MODC_DECLARE_CU)
    // cuEventElapsedTime is cuEventElapsedTime_v2 in CUDA 13 headers; older drivers have only the
    // first, with the same signature.
    decltype(&::cuEventElapsedTime) eventElapsedTime = nullptr;
    bool simulated = false;  // the cuda-sim backend's (sim/sim.hpp): modules are host builds
};
#undef MODC_DECLARE_CU

// The driver, opened once per process ($MODC_LIBCUDA first, if set); null with *why set to a
// sentence when it cannot be (not found, or too old).
const Driver* load_driver(std::string* why);
// "CUDA_ERROR_X: text" for a failed call.
std::string cu_error(const Driver& d, CUresult r);
// Initialises the driver and counts the devices (into *count when not null): empty, or why the
// GPU cannot be used.
std::string probe_driver(const Driver& d, int* count);

// Device `index` (checked: an index past the devices there are throws GpuError naming both) and
// its primary context, the one the CUDA runtime (and so PyTorch) uses for that device, retained:
// the caller releases it with cuDevicePrimaryCtxRelease(*device).
CUcontext retain_device(const Driver& d, int index, CUdevice* device);

// Runs `release` (which frees what was made on the device) with `context` current, then lets go
// of the device's primary context (retain_device's). If the context cannot be made current,
// nothing in it can be freed: `release` is skipped.
void release_device(const Driver& d, CUcontext context, CUdevice device, const std::function<void()>& release);

// Makes `context` current on this thread while it lives, then the caller's again: everything
// made for a device is used in its context, and a caller's own current context (torch's current
// device) is left as it was. Nests.
class ContextScope {
public:
    ContextScope(const Driver& d, CUcontext context);
    ~ContextScope();
    ContextScope(const ContextScope&) = delete;
    ContextScope& operator=(const ContextScope&) = delete;

private:
    const Driver& d_;
};

// CUDA C++ compiled by NVRTC for `device` (through options.cache when not null) and loaded into
// the current context: a cubin for the device's architecture, or PTX for the newest one NVRTC
// knows below it (the driver then compiles it) when NVRTC does not know the device. On the
// simulator, NVRTC still compiles the source (where it can be loaded), so that what runs is what a
// GPU would get, and the module loaded is the source's host build (sim/host_build.hpp, through
// options.host_cache), with an entry for each of `kernels`. Throws GpuError.
struct LoadedModule {
    CUmodule module = nullptr;
    bool from_cache = false;  // the compilation came from the disk cache
};
LoadedModule load_module(const Driver& d, CUdevice device, const std::string& source, const std::string& name,
                         const std::vector<std::string>& kernels, const GpuOptions& options);

// Throws GpuError("<what> failed: <the driver's error>") unless r is CUDA_SUCCESS.
inline void check(const Driver& d, CUresult r, const char* what) {
    if (r != CUDA_SUCCESS) throw GpuError(std::string(what) + " failed: " + cu_error(d, r));
}

}  // namespace modc::cuda
