// runtime/cuda/nvrtc: run-time compilation of the generated CUDA C++ with NVRTC.
//
// libnvrtc is opened at run time (dlopen), so modc starts where it is missing and says so when
// asked to compile. Compiling for `-arch=sm_XX` gives both the PTX and the cubin; the log is
// kept with them (with `--ptxas-options=-v` it holds each kernel's registers and spills, which
// parse_ptxas_info() reads). Through a DiskCache, a source compiled once with the same options
// and the same NVRTC is not compiled again.
#pragma once
#include <string>
#include <vector>

#include "runtime/cuda/cache.hpp"

namespace modc::cuda {

// NVRTC, opened once. Null, with the reason in *why, where it cannot be loaded.
class Nvrtc;
const Nvrtc* load_nvrtc(std::string* why);
std::string nvrtc_version(const Nvrtc& nvrtc);  // "13.0"
// The architectures this NVRTC can compile for (80 for sm_80, ...).
std::vector<int> nvrtc_archs(const Nvrtc& nvrtc);

struct CompileRequest {
    std::string source;
    std::string name = "modc.cu";  // the program's name in messages
    std::string arch = "sm_90";    // sm_80, sm_90, ...
    bool ptxas_verbose = true;     // keep ptxas's report (registers, spills) in the log
    std::vector<std::string> extra_options;
};

// The options NVRTC gets for a request (part of the cache key).
std::vector<std::string> nvrtc_options(const CompileRequest& request);

// One compilation's result: a value that carries its log, whatever happened.
struct Compiled {
    bool ok = false;
    std::string log;    // NVRTC's log: errors, warnings, ptxas info
    std::string ptx;    // text
    std::string cubin;  // ELF
    std::vector<std::string> options;
    bool from_cache = false;
    bool replaced_corrupt_entry = false;  // the cache held a damaged entry, compiled again
};

// Compiles with NVRTC, through `cache` when it is not null. The cache key is a SHA-256 of the
// source, the options and NVRTC's identity (version, and the library file's path and size). Failures are in the result (ok =
// false, the reason in the log); only a failure to load NVRTC leaves log = the reason and
// options empty.
Compiled compile(const Nvrtc& nvrtc, const CompileRequest& request, const DiskCache* cache = nullptr);

// "sm_90" from "sm_90" or "90"; empty when it is neither.
std::string normalize_arch(const std::string& arch);

// What ptxas reported for each kernel (with ptxas_verbose).
struct KernelResources {
    std::string name;
    int registers = 0;
    long stack_bytes = 0;
    long spill_stores = 0;
    long spill_loads = 0;
};
std::vector<KernelResources> parse_ptxas_info(const std::string& log);

}  // namespace modc::cuda
