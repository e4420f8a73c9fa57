#include "runtime/cuda/nvrtc.hpp"

#include <dlfcn.h>
#include <nvrtc.h>

#include <cctype>
#include <filesystem>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>

namespace modc::cuda {

#define MODC_STR_(x) #x
#define MODC_STR(x) MODC_STR_(x)
#define MODC_NVRTC_FUNCTIONS(X)                                                                          \
    X(nvrtcVersion) X(nvrtcGetErrorString) X(nvrtcCreateProgram) X(nvrtcDestroyProgram)                 \
    X(nvrtcCompileProgram) X(nvrtcGetProgramLogSize) X(nvrtcGetProgramLog) X(nvrtcGetPTXSize)           \
    X(nvrtcGetPTX) X(nvrtcGetCUBINSize) X(nvrtcGetCUBIN) X(nvrtcGetNumSupportedArchs) X(nvrtcGetSupportedArchs)

class Nvrtc {
public:
#define MODC_DECLARE(f) decltype(&::f) f = nullptr;
    MODC_NVRTC_FUNCTIONS(MODC_DECLARE)
#undef MODC_DECLARE
    void* library = nullptr;
    int major = 0, minor = 0;
    std::string identity;  // "13.0 /path/to/libnvrtc.so.13.0.88 12345678": tells patch releases apart
};

namespace {

std::unique_ptr<Nvrtc> open_nvrtc(std::string& why) {
    // The soname of this toolkit's NVRTC first, then any other.
    std::vector<std::string> names;
    if (const char* path = std::getenv("MODC_LIBNVRTC"); path && *path) names.push_back(path);
#ifdef MODC_CUDA_VERSION_MAJOR
    names.push_back("libnvrtc.so." MODC_STR(MODC_CUDA_VERSION_MAJOR));
#endif
    for (const char* n : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so",
                          "/usr/local/cuda/lib64/libnvrtc.so"})
        names.push_back(n);
    void* lib = nullptr;
    std::string errors;
    for (const auto& n : names) {
        lib = ::dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (lib) break;
        if (errors.empty()) errors = ::dlerror();
    }
    if (!lib) {
        why = "NVRTC (libnvrtc.so) could not be loaded: " + errors;
        return nullptr;
    }
    auto n = std::make_unique<Nvrtc>();
    n->library = lib;
    std::string missing;
#define MODC_LOAD(f)                                                                  \
    n->f = reinterpret_cast<decltype(n->f)>(::dlsym(lib, MODC_STR(f)));               \
    if (!n->f) missing += std::string(missing.empty() ? "" : ", ") + MODC_STR(f);
    MODC_NVRTC_FUNCTIONS(MODC_LOAD)
#undef MODC_LOAD
    if (!missing.empty()) {
        why = "the NVRTC library found lacks " + missing + "; it is too old";
        return nullptr;
    }
    n->nvrtcVersion(&n->major, &n->minor);
    n->identity = std::to_string(n->major) + "." + std::to_string(n->minor);
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(n->nvrtcVersion), &info) && info.dli_fname) {
        std::error_code ec;
        auto file = std::filesystem::canonical(info.dli_fname, ec);
        if (!ec) n->identity += " " + file.string() + " " + std::to_string(std::filesystem::file_size(file, ec));
    }
    return n;
}

// RAII for an nvrtcProgram.
class Program {
public:
    Program(const Nvrtc& nv, const std::string& source, const std::string& name) : nv_(nv) {
        status_ = nv_.nvrtcCreateProgram(&p_, source.c_str(), name.c_str(), 0, nullptr, nullptr);
    }
    ~Program() {
        if (status_ == NVRTC_SUCCESS) nv_.nvrtcDestroyProgram(&p_);
    }
    Program(const Program&) = delete;
    Program& operator=(const Program&) = delete;

    Compiled compile(const std::vector<std::string>& options) {
        Compiled out;
        out.options = options;
        if (status_ != NVRTC_SUCCESS) {
            out.log = std::string("nvrtcCreateProgram failed: ") + nv_.nvrtcGetErrorString(status_);
            return out;
        }
        std::vector<const char*> argv;
        for (const auto& o : options) argv.push_back(o.c_str());
        nvrtcResult r = nv_.nvrtcCompileProgram(p_, static_cast<int>(argv.size()), argv.data());
        std::size_t size = 0;
        if (nv_.nvrtcGetProgramLogSize(p_, &size) == NVRTC_SUCCESS && size > 1) {
            out.log.resize(size);
            nv_.nvrtcGetProgramLog(p_, out.log.data());
            out.log.resize(size - 1);  // the terminating NUL
        }
        if (r != NVRTC_SUCCESS) {
            if (out.log.empty()) out.log = nv_.nvrtcGetErrorString(r);
            return out;
        }
        if (nv_.nvrtcGetPTXSize(p_, &size) == NVRTC_SUCCESS && size > 0) {
            out.ptx.resize(size);
            nv_.nvrtcGetPTX(p_, out.ptx.data());
            out.ptx.resize(size - 1);
        }
        if (nv_.nvrtcGetCUBINSize(p_, &size) == NVRTC_SUCCESS && size > 0) {
            out.cubin.resize(size);
            nv_.nvrtcGetCUBIN(p_, out.cubin.data());
        }
        out.ok = true;
        return out;
    }

private:
    const Nvrtc& nv_;
    nvrtcProgram p_ = nullptr;
    nvrtcResult status_ = NVRTC_ERROR_INTERNAL_ERROR;
};

// A compiled result as a cache payload: "log N\nptx N\ncubin N\n" then the three.
std::string pack(const Compiled& c) {
    std::ostringstream out;
    out << "log " << c.log.size() << "\nptx " << c.ptx.size() << "\ncubin " << c.cubin.size() << "\n";
    return out.str() + c.log + c.ptx + c.cubin;
}

bool unpack(const std::string& payload, Compiled& c) {
    std::istringstream in(payload);
    std::string w1, w2, w3;
    std::size_t a = 0, b = 0, d = 0;
    if (!(in >> w1 >> a >> w2 >> b >> w3 >> d) || w1 != "log" || w2 != "ptx" || w3 != "cubin") return false;
    in.get();  // the newline after the header
    auto at = static_cast<std::size_t>(in.tellg());
    if (at + a + b + d != payload.size()) return false;
    c.log = payload.substr(at, a);
    c.ptx = payload.substr(at + a, b);
    c.cubin = payload.substr(at + a + b, d);
    c.ok = true;
    return true;
}

}  // namespace

const Nvrtc* load_nvrtc(std::string* why) {
    static std::string reason;
    static std::unique_ptr<Nvrtc> nvrtc = open_nvrtc(reason);
    if (!nvrtc && why) *why = reason;
    return nvrtc.get();
}

std::string nvrtc_version(const Nvrtc& nvrtc) { return std::to_string(nvrtc.major) + "." + std::to_string(nvrtc.minor); }

std::vector<int> nvrtc_archs(const Nvrtc& nvrtc) {
    int n = 0;
    if (nvrtc.nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0) return {};
    std::vector<int> archs(static_cast<std::size_t>(n));
    nvrtc.nvrtcGetSupportedArchs(archs.data());
    return archs;
}

std::string normalize_arch(const std::string& arch) {
    std::string digits = arch.rfind("sm_", 0) == 0 ? arch.substr(3) : arch;
    if (digits.size() < 2 || digits.size() > 3) return "";
    for (std::size_t i = 0; i < digits.size(); ++i)
        if (!std::isdigit(static_cast<unsigned char>(digits[i])) && !(i + 1 == digits.size() && digits[i] == 'a'))
            return "";
    return "sm_" + digits;
}

std::vector<std::string> nvrtc_options(const CompileRequest& request) {
    std::vector<std::string> options{"-arch=" + request.arch, "-std=c++17"};
    if (request.ptxas_verbose) options.push_back("--ptxas-options=-v");
    for (const auto& o : request.extra_options) options.push_back(o);
    return options;
}

Compiled compile(const Nvrtc& nvrtc, const CompileRequest& request, const DiskCache* cache) {
    std::vector<std::string> options = nvrtc_options(request);
    auto run = [&] {
        Program program(nvrtc, request.source, request.name);
        return program.compile(options);
    };
    if (!cache) return run();
    std::vector<std::string> parts{"nvrtc", nvrtc.identity, request.source};
    for (const auto& o : options) parts.push_back(o);
    std::string key = DiskCache::key(parts);
    Compiled fresh;
    bool compiled = false;
    DiskCache::Status status = DiskCache::Status::Miss;
    auto payload = cache->get_or_make(
        key,
        [&]() -> std::optional<std::string> {
            fresh = run();
            compiled = true;
            if (!fresh.ok) return std::nullopt;  // failures are not cached
            return pack(fresh);
        },
        &status);
    if (compiled) {
        fresh.replaced_corrupt_entry = status == DiskCache::Status::Corrupt;
        return fresh;
    }
    Compiled cached;
    cached.options = options;
    if (payload && unpack(*payload, cached)) {
        cached.from_cache = true;
        return cached;
    }
    // A well-framed entry whose contents do not parse: compile again and overwrite it.
    fresh = run();
    if (fresh.ok) cache->store(key, pack(fresh));
    fresh.replaced_corrupt_entry = true;
    return fresh;
}

std::vector<KernelResources> parse_ptxas_info(const std::string& log) {
    // ptxas info    : Compiling entry function 'g0_normalize' for 'sm_90'
    // ptxas info    : Function properties for g0_normalize
    // ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
    // ptxas info    : Used 18 registers, used 0 barriers, 376 bytes cmem[0]
    static const std::regex entry(R"(Compiling entry function '([^']+)')");
    static const std::regex frame(R"((\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)");
    static const std::regex used(R"(Used (\d+) registers)");
    std::vector<KernelResources> out;
    std::istringstream in(log);
    std::string line;
    std::smatch m;
    while (std::getline(in, line)) {
        if (std::regex_search(line, m, entry)) {
            out.push_back(KernelResources{m[1].str()});
        } else if (!out.empty() && std::regex_search(line, m, frame)) {
            out.back().stack_bytes = std::stol(m[1].str());
            out.back().spill_stores = std::stol(m[2].str());
            out.back().spill_loads = std::stol(m[3].str());
        } else if (!out.empty() && std::regex_search(line, m, used)) {
            out.back().registers = std::stoi(m[1].str());
        }
    }
    return out;
}

}  // namespace modc::cuda
