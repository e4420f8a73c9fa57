// runtime/cuda/sim/host_build: the generated CUDA C++ compiled for the host, for the cuda-sim
// backend (and the tests that run kernels one by one): the very text NVRTC compiles, behind
// cuda_host.h (built into modc as text), with an entry per kernel (MODC_SIM_KERNEL), compiled by
// the host C++ compiler into a shared object. Through a DiskCache, keyed by the header, the
// source, the kernels, the flags and the compiler's identity, the same build is not done twice.
#pragma once
#include <string>
#include <vector>

#include "runtime/cuda/cache.hpp"

namespace modc::cuda::sim {

// The host C++ compiler: $MODC_HOST_CXX, else the compiler modc was built with, else `c++` on
// the PATH. `version` is the first line of its --version (part of the cache key).
struct HostCompiler {
    std::string path;
    std::string version;
};
// Empty *why and the compiler; or *why set to a sentence saying what was looked for.
HostCompiler find_host_compiler(std::string* why);

struct HostBuild {
    bool ok = false;
    std::string library;  // the shared object's bytes
    std::string log;      // the compiler's messages (the reason, when !ok)
    bool from_cache = false;
};

// `source` (a kernel per name in `kernels`) compiled for the host, through `cache` when not null.
HostBuild build_for_host(const HostCompiler& cxx, const std::string& source, const std::vector<std::string>& kernels,
                         const DiskCache* cache);

}  // namespace modc::cuda::sim
