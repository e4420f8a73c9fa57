// The cuda-sim backend's count of the driver and cuBLAS calls run in each device's context
// (sim_cuda.cpp), without CUDA's headers: for the tests, from the library and Python too.
#pragma once

namespace modc::cuda::sim {

// The calls that ran in device `device`'s primary context so far, in this process.
long calls_in_context(int device);

}  // namespace modc::cuda::sim
