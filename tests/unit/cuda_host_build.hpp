// Generated CUDA C++ compiled for the host by the cuda-sim backend's own host build
// (runtime/cuda/sim/host_build.hpp) and loaded, for the unit tests that run the CUDA backend's
// kernels one by one without a GPU (test_cuda.cpp, test_step_cuda.cpp).
#pragma once
#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "program/cuda_program.hpp"
#include "runtime/cuda/sim/host_build.hpp"
#include "support.hpp"

namespace modc::test {

// The generated source compiled for the host, with an entry for each of `kernels` (no Catch2
// assertions: runs on several threads).
struct HostBuild {
    TempDir dir;
    std::filesystem::path so;
    int status = -1;
    std::string log;
};

inline std::unique_ptr<HostBuild> build_for_host(const std::string& source, const std::vector<std::string>& kernels = {}) {
    auto b = std::make_unique<HostBuild>();
    b->so = b->dir.path / "kernels.so";
    std::string why;
    const cuda::sim::HostCompiler cxx = cuda::sim::find_host_compiler(&why);
    if (!why.empty()) {
        b->log = why;
        return b;
    }
    cuda::sim::HostBuild built = cuda::sim::build_for_host(cxx, source, kernels, nullptr);
    b->log = built.log;
    if (!built.ok) return b;
    std::ofstream(b->so, std::ios::binary) << built.library;
    b->status = 0;
    return b;
}

// A host build, loaded: the named kernels, each run over a launch by cuda_host.h's
// modc_sim_launch, its arguments passed as cuLaunchKernel takes them.
class HostKernels {
public:
    HostKernels(const HostBuild& build, const std::vector<std::string>& kernels) {
        INFO(build.log);
        REQUIRE(build.status == 0);
        lib_ = ::dlopen(build.so.c_str(), RTLD_NOW | RTLD_LOCAL);
        REQUIRE(lib_ != nullptr);
        launch_ = reinterpret_cast<Launcher>(::dlsym(lib_, "modc_sim_launch"));
        REQUIRE(launch_ != nullptr);
        for (const auto& k : kernels) {
            void* f = ::dlsym(lib_, ("modc_sim_run_" + k).c_str());
            INFO(k);
            REQUIRE(f != nullptr);
            kernels_[k] = reinterpret_cast<Entry>(f);
        }
    }
    ~HostKernels() {
        if (lib_) ::dlclose(lib_);
    }
    HostKernels(const HostKernels&) = delete;
    HostKernels& operator=(const HostKernels&) = delete;
    // A dualizer's kernel: every argument a pointer.
    void launch(const cuda::Launch& l, std::vector<void*> args) const {
        std::vector<void*> params;
        for (auto& a : args) params.push_back(&a);
        launch_params(l.kernel, l.grid, l.block, params);
    }
    // Any kernel: params[i] points at argument i.
    void launch_params(const std::string& kernel, const std::array<unsigned, 3>& grid, const std::array<unsigned, 3>& block,
                       const std::vector<void*>& params) const {
        launch_(kernels_.at(kernel), grid.data(), block.data(), params.data());
    }

private:
    using Entry = void (*)(void* const*);
    using Launcher = void (*)(Entry, const unsigned*, const unsigned*, void* const*);
    void* lib_ = nullptr;
    Launcher launch_ = nullptr;
    std::map<std::string, Entry> kernels_;
};

}  // namespace modc::test
