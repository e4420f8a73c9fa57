#include "runtime/cuda/sim/host_build.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace modc::cuda::sim {

namespace {

// cuda_host.h's text (generated at build time from runtime/cuda/sim/cuda_host.h).
const char* const kHeader =
#include "cuda_host_text.inc"
    ;

const char* const kFlags = "-std=c++17 -O1 -shared -fPIC -w -x c++";

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

bool executable(const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// A command name resolved through $PATH (a path with a slash is taken as it is).
std::string resolve(const std::string& name) {
    if (name.find('/') != std::string::npos) return executable(name) ? name : "";
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && executable(std::filesystem::path(dir) / name)) return (std::filesystem::path(dir) / name).string();
    return "";
}

// The first line `command` prints on stdout; empty if it fails.
std::string first_line(const std::string& command) {
    FILE* pipe = ::popen((command + " 2>/dev/null").c_str(), "r");
    if (!pipe) return "";
    std::array<char, 512> buffer{};
    std::string line;
    if (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe)) line = buffer.data();
    while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe)) {
    }
    const int status = ::pclose(pipe);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return status == 0 ? line : "";
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A fresh private directory for one build, removed when done.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "modc-sim-XXXXXX").string();
        if (::mkdtemp(pattern.data())) path = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
};

HostBuild compile(const HostCompiler& cxx, const std::string& text) {
    HostBuild b;
    TempDir dir;
    if (dir.path.empty()) {
        b.log = "could not make a temporary directory for the host build";
        return b;
    }
    const auto cu = dir.path / "kernels.cu", so = dir.path / "kernels.so", log = dir.path / "log";
    std::ofstream(cu, std::ios::binary) << text;
    const std::string cmd = quote(cxx.path) + " " + kFlags + " " + quote(cu.string()) + " -o " + quote(so.string()) +
                            " >" + quote(log.string()) + " 2>&1";
    const int status = std::system(cmd.c_str());
    b.log = read_file(log);
    if (status != 0) {
        if (b.log.empty()) b.log = cxx.path + " failed (status " + std::to_string(status) + ")";
        return b;
    }
    b.library = read_file(so);
    b.ok = !b.library.empty();
    if (!b.ok) b.log = cxx.path + " wrote no shared object";
    return b;
}

}  // namespace

HostCompiler find_host_compiler(std::string* why) {
    HostCompiler c;
    std::vector<std::string> tried;
    if (const char* env = std::getenv("MODC_HOST_CXX"); env && *env) {
        c.path = resolve(env);
        if (c.path.empty()) {
            if (why) *why = std::string("MODC_HOST_CXX names no executable C++ compiler: ") + env;
            return {};
        }
    } else {
#ifdef MODC_BUILD_CXX
        c.path = resolve(MODC_BUILD_CXX);
        tried.push_back(MODC_BUILD_CXX);
#endif
        if (c.path.empty()) c.path = resolve("c++");
        tried.push_back("c++");
    }
    if (!c.path.empty()) c.version = first_line(quote(c.path) + " --version");
    if (c.path.empty() || c.version.empty()) {
        std::string list;
        for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
        if (why)
            *why = c.path.empty() ? "no host C++ compiler was found to build the simulated kernels (tried " + list +
                                        "; set MODC_HOST_CXX)"
                                  : "the host C++ compiler " + c.path + " does not run (" + c.path + " --version failed)";
        return {};
    }
    if (why) why->clear();
    return c;
}

HostBuild build_for_host(const HostCompiler& cxx, const std::string& source, const std::vector<std::string>& kernels,
                         const DiskCache* cache) {
    std::string text = std::string(kHeader) + "\n#line 1 \"kernels.cu\"\n" + source + "\n// The simulator's entries.\n";
    for (const auto& k : kernels) text += "MODC_SIM_KERNEL(" + k + ")\n";
    if (!cache) return compile(cxx, text);
    HostBuild out;
    DiskCache::Status status = DiskCache::Status::Miss;
    auto library = cache->get_or_make(
        DiskCache::key({"modc cuda-sim host build 1", text, kFlags, cxx.path, cxx.version}),
        [&]() -> std::optional<std::string> {
            out = compile(cxx, text);
            if (!out.ok) return std::nullopt;
            return out.library;
        },
        &status);
    if (!library) return out;
    out.ok = true;
    out.library = std::move(*library);
    out.from_cache = status == DiskCache::Status::Hit;
    return out;
}

}  // namespace modc::cuda::sim
