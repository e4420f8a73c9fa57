// Generated CUDA C++ compiled for the host with tests/cuda_host/cuda_host.h and loaded, for the
// unit tests that run the CUDA backend's kernels without a GPU (test_cuda.cpp, test_step_cuda.cpp).
// Needs MODC_HOST_CXX and MODC_CUDA_HOST_HEADER (tests/CMakeLists.txt).
#pragma once
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <set>
#include <sstream>

#include "compiler/backend/codegen_cuda.hpp"
#include "program/cuda_step_program.hpp"
#include "support.hpp"

namespace modc::test {

// The generated source compiled for the host (no Catch2 assertions: runs on several threads).
struct HostBuild {
    TempDir dir;
    std::filesystem::path so;
    int status = -1;
    std::string log;
};

inline std::unique_ptr<HostBuild> build_for_host(const std::string& source) {
    auto b = std::make_unique<HostBuild>();
    std::filesystem::path cu = b->dir.path / "kernels.cu", log = b->dir.path / "log";
    b->so = b->dir.path / "kernels.so";
    std::ofstream(cu) << source;
    std::string cmd = quote(MODC_HOST_CXX) + " -std=c++17 -O1 -shared -fPIC -w -include " + quote(MODC_CUDA_HOST_HEADER) +
                      " -x c++ " + quote(cu.string()) + " -o " + quote(b->so.string()) + " 2>" + quote(log.string());
    b->status = std::system(cmd.c_str());
    b->log = read(log);
    return b;
}

// A host build, loaded: the named kernels, each run over a launch by cuda_host.h's
// modc_host_launch (which passes at most four pointers).
class HostKernels {
public:
    HostKernels(const HostBuild& build, const cuda::Program& program) : HostKernels(build, program.kernels) {}
    HostKernels(const HostBuild& build, const std::vector<std::string>& kernels) {
        INFO(build.log);
        REQUIRE(build.status == 0);
        lib_ = ::dlopen(build.so.c_str(), RTLD_NOW | RTLD_LOCAL);
        REQUIRE(lib_ != nullptr);
        launch_ = reinterpret_cast<Launcher>(::dlsym(lib_, "modc_host_launch"));
        REQUIRE(launch_ != nullptr);
        for (const auto& k : kernels) {
            void* f = ::dlsym(lib_, k.c_str());
            INFO(k);
            REQUIRE(f != nullptr);
            kernels_[k] = reinterpret_cast<void (*)()>(f);
        }
    }
    ~HostKernels() {
        if (lib_) ::dlclose(lib_);
    }
    HostKernels(const HostKernels&) = delete;
    HostKernels& operator=(const HostKernels&) = delete;
    void launch(const cuda::Launch& l, const std::vector<void*>& args) const { launch(l.kernel, l.grid, l.block, args); }
    void launch(const std::string& kernel, const std::array<unsigned, 3>& grid, const std::array<unsigned, 3>& block,
                const std::vector<void*>& args) const {
        launch_(kernels_.at(kernel), grid.data(), block.data(), static_cast<int>(args.size()), args.data());
    }

private:
    using Launcher = void (*)(void (*)(), const unsigned*, const unsigned*, int, void* const*);
    void* lib_ = nullptr;
    Launcher launch_ = nullptr;
    std::map<std::string, void (*)()> kernels_;
};

// The lines of $MODC_FAKE_KERNELS.params (tests/cuda_host/fake_cuda.cpp) for a dualizer's
// kernels: "name count", every parameter a pointer.
inline std::string fake_params(const cuda::Program& program) {
    std::ostringstream out;
    std::set<std::string> seen;
    for (const auto& op : program.ops)
        if (const auto* l = std::get_if<cuda::Launch>(&op.what); l && seen.insert(l->kernel).second)
            out << l->kernel << " " << l->args.size() << "\n";
    return out.str();
}

// For an optimizer's step kernels, which take `buffers` pointers then `hypers` doubles: an
// exported wrapper per kernel that modc_host_launch can run (it passes at most four pointers),
// modc_host_<kernel>(T* const* buffers, const double* hypers), to append to the source ...
inline std::string step_wrappers(const cuda::StepProgram& p, int buffers, std::size_t hypers) {
    const std::string t = p.type == ElementType::F32 ? "float" : "double";
    std::ostringstream s;
    s << "\n// Test wrappers.\n";
    for (const auto& k : p.kernels) {
        s << "extern \"C\" void modc_host_" << k << "(void* buffers, void* hypers) {\n    " << t << "* const* b = (" << t
          << "* const*)buffers;\n    const double* h = (const double*)hypers;\n    (void)h;\n    " << k << "(";
        for (int j = 0; j < buffers; ++j) s << (j ? ", " : "") << "b[" << j << "]";
        for (std::size_t j = 0; j < hypers; ++j) s << ", h[" << j << "]";
        s << ");\n}\n";
    }
    return s.str();
}

// ... and their lines of $MODC_FAKE_KERNELS.params: "name buffers hypers" (called through the wrappers).
inline std::string fake_params(const cuda::StepProgram& p, int buffers, std::size_t hypers) {
    std::ostringstream out;
    for (const auto& k : p.kernels) out << k << " " << buffers << " " << hypers << "\n";
    return out.str();
}

#ifdef MODC_FAKE_CUDA
// The environment that makes runtime/cuda load tests/cuda_host/fake_cuda.cpp with these kernels.
inline std::string fake_env(const HostBuild& build, const std::filesystem::path& cache) {
    return "MODC_LIBCUDA=" + quote(MODC_FAKE_CUDA) + " MODC_LIBCUBLAS=" + quote(MODC_FAKE_CUDA) +
           " MODC_FAKE_KERNELS=" + quote(build.so.string()) + " MODC_CACHE_DIR=" + quote(cache.string());
}
#endif

}  // namespace modc::test
