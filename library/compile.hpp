// The steps the library's compile functions share (internal: not installed).
#pragma once
#include <memory>
#include <string>

#include "compiler/analysis/compilation.hpp"
#include "compiler/backend/schedule.hpp"
#include "library/modc.hpp"

namespace modc {

namespace cuda {
class DiskCache;
class GpuDualizer;
}  // namespace cuda

std::string read_source(const std::string& path);
// Parses, elaborates, derives and type-checks; throws CompileError with the rendered
// diagnostics, or when the file defines no network or several and options.network is empty.
// Its plans.front() is the network to compile.
std::unique_ptr<Compilation> front_end(const std::string& name, const std::string& text, const CompileOptions& options);
// The optimizer block named `wanted`, or the only one; throws CompileError naming the choices.
const ast::Optimizer& choose_optimizer(const Compilation& c, const std::string& name, const std::string& wanted);
// The kernel plan of a dual plan under options.schedule and options.leaf_schedules.
kp::KernelPlan lower_for(const DualPlan& plan, const CompileOptions& options);
// The dual plan of the weights named (by path), renumbered in their order; throws CompileError
// for a path the network does not have.
DualPlan only_weights(const DualPlan& plan, const std::vector<std::string>& paths);
// Lowers a dual plan and builds its dualizer on options.backend. First checks the host memory
// it needs (work buffers, a gradient and an update per weight, and `extra_bytes` the caller
// allocates besides: an optimizer's weights and state) against options.memory_limit; throws
// CompileError naming both when it would not fit.
Dualizer make_dualizer(const DualPlan& plan, const CompileOptions& options, double extra_bytes = 0);
// A Cuda (or CudaSim) dualizer's GPU runtime, its NVRTC cache and its cache of host builds
// (null on the CPU, or without the toolkit).
cuda::GpuDualizer* gpu_dualizer(Dualizer& d);
const cuda::DiskCache* nvrtc_cache(const Dualizer& d);
const cuda::DiskCache* host_build_cache(const Dualizer& d);
// The cuda-sim's count of calls run in device `device`'s context (runtime/cuda/sim), for the
// tests of the device index; 0 without the toolkit.
long sim_calls_in_context(int device);

}  // namespace modc
