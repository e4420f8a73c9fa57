#include "runtime/cuda/driver.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "runtime/cuda/nvrtc.hpp"
#include "runtime/cuda/sim/host_build.hpp"
#include "runtime/cuda/sim/sim.hpp"

namespace modc::cuda {

#define MODC_STR_(x) #x
#define MODC_STR(x) MODC_STR_(x)

namespace {

struct Loaded {
    std::unique_ptr<Driver> driver;
    std::string error;
};

const Loaded& loaded() {
    static const Loaded l = [] {
        Loaded out;
        std::vector<std::string> names{"libcuda.so.1", "libcuda.so"};
        if (const char* path = std::getenv("MODC_LIBCUDA"); path && *path) names.insert(names.begin(), path);
        void* lib = nullptr;
        std::string error;
        for (const auto& n : names) {
            if ((lib = ::dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL))) break;
            if (error.empty()) error = ::dlerror();
        }
        if (!lib) {
            out.error = "no CUDA driver was found (" + error + ")";
            return out;
        }
        auto d = std::make_unique<Driver>();
        std::string missing;
#define MODC_LOAD(f)                                                    \
    d->f = reinterpret_cast<decltype(d->f)>(::dlsym(lib, MODC_STR(f))); \
    if (!d->f) missing += std::string(missing.empty() ? "" : ", ") + MODC_STR(f);
        MODC_CU_FUNCTIONS(MODC_LOAD)
#undef MODC_LOAD
        for (const char* name : {MODC_STR(cuEventElapsedTime), "cuEventElapsedTime"})
            if (!d->eventElapsedTime) d->eventElapsedTime = reinterpret_cast<decltype(d->eventElapsedTime)>(::dlsym(lib, name));
        if (!d->eventElapsedTime) missing += std::string(missing.empty() ? "" : ", ") + "cuEventElapsedTime";
        if (missing.empty())
            out.driver = std::move(d);
        else
            out.error = "the CUDA driver found is too old: it lacks " + missing;
        return out;
    }();
    return l;
}

}  // namespace

const Driver* load_driver(std::string* why) {
    const Loaded& l = loaded();
    if (!l.driver && why) *why = l.error;
    return l.driver.get();
}

std::string cu_error(const Driver& d, CUresult r) {
    const char* name = nullptr;
    const char* text = nullptr;
    d.cuGetErrorName(r, &name);
    d.cuGetErrorString(r, &text);
    return std::string(name ? name : "CUDA error " + std::to_string(static_cast<int>(r))) + (text ? std::string(": ") + text : "");
}

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

CUcontext retain_device(const Driver& d, int index, CUdevice* device) {
    int count = 0;
    if (std::string why = probe_driver(d, &count); !why.empty()) throw GpuError(why);
    if (index < 0 || index >= count)
        throw GpuError("there is no CUDA device " + std::to_string(index) + ": " + std::to_string(count) +
                       (count == 1 ? " device was found (index 0)" : " devices were found (indices 0 to " + std::to_string(count - 1) + ")"));
    check(d, d.cuDeviceGet(device, index), "cuDeviceGet");
    CUcontext context = nullptr;
    check(d, d.cuDevicePrimaryCtxRetain(&context, *device), "cuDevicePrimaryCtxRetain");
    return context;
}

ContextScope::ContextScope(const Driver& d, CUcontext context) : d_(d) {
    check(d, d.cuCtxPushCurrent(context), "cuCtxPushCurrent");
}

ContextScope::~ContextScope() {
    CUcontext popped = nullptr;
    d_.cuCtxPopCurrent(&popped);
}

void release_device(const Driver& d, CUcontext context, CUdevice device, const std::function<void()>& release) {
    try {
        ContextScope scope(d, context);
        release();
    } catch (const GpuError&) {  // cuCtxPushCurrent failed
    }
    d.cuDevicePrimaryCtxRelease(device);
}

LoadedModule load_module(const Driver& d, CUdevice device, const std::string& source, const std::string& name,
                         const std::vector<std::string>& kernels, const GpuOptions& options) {
    int major = 0, minor = 0;
    check(d, d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "cuDeviceGetAttribute");
    check(d, d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "cuDeviceGetAttribute");
    std::string why;
    const Nvrtc* nvrtc = load_nvrtc(&why);
    if (!nvrtc && !d.simulated) throw GpuError(why);
    Compiled compiled;
    compiled.from_cache = true;  // on a simulator without NVRTC, only the host build counts
    if (nvrtc) {
        int arch = major * 10 + minor, best = 0;
        for (int a : nvrtc_archs(*nvrtc))
            if (a <= arch) best = std::max(best, a);
        if (best == 0) throw GpuError("NVRTC " + nvrtc_version(*nvrtc) + " cannot compile for sm_" + std::to_string(arch));
        CompileRequest request;
        request.source = source;
        request.name = name;
        request.arch = (best == arch ? "sm_" : "compute_") + std::to_string(best);
        compiled = compile(*nvrtc, request, options.cache);
        if (!compiled.ok)
            throw GpuError("NVRTC could not compile the generated CUDA code for " + request.arch + ":\n" + compiled.log);
    }
    LoadedModule out;
    out.from_cache = compiled.from_cache;
    std::string image = compiled.cubin.empty() ? compiled.ptx : compiled.cubin;
    if (d.simulated) {
        const sim::HostCompiler cxx = sim::find_host_compiler(&why);
        if (!why.empty()) throw GpuError(why);
        sim::HostBuild host = sim::build_for_host(cxx, source, kernels, options.host_cache);
        if (!host.ok) throw GpuError(cxx.path + " could not compile the generated CUDA code for the host:\n" + host.log);
        out.from_cache = out.from_cache && host.from_cache;
        image = sim::module_image(host.library);
    }
    check(d, d.cuModuleLoadData(&out.module, image.c_str()), "cuModuleLoadData");
    return out;
}

}  // namespace modc::cuda
