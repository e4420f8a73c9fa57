// runtime/cuda/sim: the cuda-sim backend's stand-ins for the CUDA driver and cuBLAS
// (sim_cuda.cpp), linked into modc under this namespace, so that a process may hold the real
// libcuda beside them. Internal to runtime/cuda (it includes <cuda.h>).
#pragma once
#include <cuda.h>

#include <string>

#include "runtime/cuda/driver.hpp"
#include "runtime/cuda/sim/context_counts.hpp"

namespace modc::cuda::sim {

// Each driver function of driver.hpp's table, with the header's signature.
#define MODC_SIM_DECLARE(f) decltype(::f) f;
MODC_CU_FUNCTIONS(MODC_SIM_DECLARE)
decltype(::cuEventElapsedTime) cuEventElapsedTime;

// The simulator as a driver table (simulated = true).
const Driver& driver();

// What cuModuleLoadData takes: a host shared object (host_build.hpp), wrapped with its size.
std::string module_image(const std::string& library);

// Whether this thread has a context current (for the tests; calls_in_context: context_counts.hpp).
bool context_current();

// The work enqueued on `stream` and its synchronisations so far (for the tests).
void stream_counts(CUstream stream, long* enqueued, long* synchronized);

}  // namespace modc::cuda::sim
