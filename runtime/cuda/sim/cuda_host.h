// cuda_host.h: runs modc's generated CUDA C++ on the CPU (the cuda-sim backend, and the tests).
//
// The generated source includes nothing and uses only: __global__, __launch_bounds__,
// __restrict__, __device__, __forceinline__, threadIdx/blockIdx/blockDim/gridDim,
// sqrtf/sqrt/fabsf/fabs, atomicAdd, atomicMax, atomicMin, __float_as_uint, __uint_as_float and
// __double_as_longlong. This header maps each onto
// plain C++, so that the very text NVRTC compiles can be compiled by the host compiler:
//
//     c++ -O1 -shared -fPIC -include cuda_host.h -x c++ kernels.cu -o kernels.so
//
// (runtime/cuda/sim/host_build.cpp does this, with the header's text in front of the source), and
// modc_sim_launch() runs one kernel over its launch configuration, block after block and thread
// after thread. The generated kernels use no shared memory and no __syncthreads, so
// running the threads one after the other is exact: every thread's work is independent apart
// from atomics, and the atomics are plain read-modify-writes here.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cstddef>
#include <utility>

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
};

// Static, not inline: an inline variable is a unique symbol, which would keep the library
// from ever being unloaded.
static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static thread_local dim3 blockDim;
static thread_local dim3 gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict

inline float atomicAdd(float* p, float v) {
    float old = *p;
    *p = old + v;
    return old;
}
inline double atomicAdd(double* p, double v) {
    double old = *p;
    *p = old + v;
    return old;
}
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) {
    unsigned long long old = *p;
    if (v > old) *p = v;
    return old;
}
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
    unsigned long long old = *p;
    if (v < old) *p = v;
    return old;
}
inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    memcpy(&u, &f, sizeof u);
    return u;
}
inline float __uint_as_float(unsigned int u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
inline long long __double_as_longlong(double d) {
    long long u;
    memcpy(&u, &d, sizeof u);
    return u;
}

// A kernel launch as cuLaunchKernel describes it: params[i] points at argument i. The host build
// appends MODC_SIM_KERNEL(name) for each kernel, which exports modc_sim_run_<name> (calls the
// kernel with each argument read as its own parameter type) and modc_sim_args_<name> (the
// count and sizes of the parameters, so that a launch's arguments can be copied when it is issued).
namespace modc_sim {
template <class... A, std::size_t... I>
inline void call(void (*kernel)(A...), void* const* params, std::index_sequence<I...>) {
    kernel(*static_cast<A*>(params[I])...);
}
template <class... A>
inline void call(void (*kernel)(A...), void* const* params) {
    call(kernel, params, std::index_sequence_for<A...>{});
}
template <class... A>
inline int sizes(void (*)(A...), unsigned long* out) {
    const unsigned long s[] = {sizeof(A)..., 0};
    for (unsigned long i = 0; i < sizeof...(A); ++i) out[i] = s[i];
    return static_cast<int>(sizeof...(A));
}
}  // namespace modc_sim

#define MODC_SIM_KERNEL(name)                                                                                     \
    extern "C" __attribute__((visibility("default"), used)) void modc_sim_run_##name(void* const* params) {       \
        modc_sim::call(name, params);                                                                             \
    }                                                                                                             \
    extern "C" __attribute__((visibility("default"), used)) int modc_sim_args_##name(unsigned long* sizes) {      \
        return modc_sim::sizes(name, sizes);                                                                      \
    }

// Runs a kernel (its modc_sim_run_ entry) over a grid of blocks, block after block and thread
// after thread.
extern "C" __attribute__((visibility("default"), used)) void modc_sim_launch(void (*run)(void* const*),
                                                                           const unsigned* grid, const unsigned* block,
                                                                           void* const* params) {
    gridDim = dim3{grid[0], grid[1], grid[2]};
    blockDim = dim3{block[0], block[1], block[2]};
    for (unsigned bz = 0; bz < grid[2]; ++bz)
        for (unsigned by = 0; by < grid[1]; ++by)
            for (unsigned bx = 0; bx < grid[0]; ++bx)
                for (unsigned tz = 0; tz < block[2]; ++tz)
                    for (unsigned ty = 0; ty < block[1]; ++ty)
                        for (unsigned tx = 0; tx < block[0]; ++tx) {
                            blockIdx = uint3{bx, by, bz};
                            threadIdx = uint3{tx, ty, tz};
                            run(params);
                        }
}
