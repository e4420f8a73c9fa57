// cuda_host.h: runs modc's generated CUDA C++ on the CPU (the cuda-sim backend, and the tests).
//
// The generated source includes nothing and uses only: __global__, __launch_bounds__,
// __restrict__, __device__, __forceinline__, __shared__, __syncthreads,
// threadIdx/blockIdx/blockDim/gridDim, sqrtf/sqrt/fabsf/fabs, atomicAdd, atomicMax, atomicMin,
// __float_as_uint, __uint_as_float and __double_as_longlong. This header maps each onto
// plain C++, so that the very text NVRTC compiles can be compiled by the host compiler:
//
//     c++ -O1 -shared -fPIC -include cuda_host.h -x c++ kernels.cu -o kernels.so
//
// (runtime/cuda/sim/host_build.cpp does this, with the header's text in front of the source), and
// modc_sim_launch() runs one kernel over its launch configuration, block after block and thread
// after thread. Threads share nothing but global memory, shared memory and atomics (plain
// read-modify-writes here), so running them one after the other is exact, but for a barrier:
//
// __syncthreads by replay. A block runs in passes: in pass p every thread runs the kernel from
// its start and stops at its (p+1)th __syncthreads (a longjmp back to the launch); the block is
// done after the pass in which every thread ran to its end. So when a thread passes barrier k,
// every thread of the block has run all it does before barrier k (in an earlier pass), which
// is what a barrier guarantees on a GPU. The price: what comes before a barrier is run again in
// each later pass, so it must give the same result when run again, which modc's kernels obey:
// between barriers they only store values computed from memory as it was at the previous
// barrier (block reductions through shared memory, with ping-pong arrays), and their atomics
// come after the last barrier. An atomic run a second time would count twice: it stops the
// process with a message instead. All threads must pass the same barriers (as on a GPU).
#pragma once
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
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
// Shared memory: one array per kernel, reused by each block in turn (blocks run one at a time).
#define __shared__ static thread_local

// The replay of barriers (see the top): the pass of the block being run, the barriers the
// current thread has passed in it, and where a thread that stops at a barrier goes.
static thread_local unsigned modc_sim_pass;
static thread_local unsigned modc_sim_barriers;
static thread_local jmp_buf modc_sim_stop;

inline void __syncthreads() {
    if (modc_sim_barriers == modc_sim_pass) _longjmp(modc_sim_stop, 1);
    ++modc_sim_barriers;
}
// Atomics must run once: not in a stretch of the kernel that an earlier pass ran.
inline void modc_sim_atomic_once() {
    if (modc_sim_barriers < modc_sim_pass) {
        fprintf(stderr, "modc CUDA simulator: an atomic before a __syncthreads would run again when the barrier is replayed\n");
        abort();
    }
}

inline float atomicAdd(float* p, float v) {
    modc_sim_atomic_once();
    float old = *p;
    *p = old + v;
    return old;
}
inline double atomicAdd(double* p, double v) {
    modc_sim_atomic_once();
    double old = *p;
    *p = old + v;
    return old;
}
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) {
    modc_sim_atomic_once();
    unsigned long long old = *p;
    if (v > old) *p = v;
    return old;
}
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
    modc_sim_atomic_once();
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

// Runs one thread of the current pass: true if it ran to its end, false if it stopped at a
// barrier. Nothing in this frame changes between _setjmp and the _longjmp back.
static bool modc_sim_thread(void (*run)(void* const*), void* const* params) {
    modc_sim_barriers = 0;
    if (_setjmp(modc_sim_stop) != 0) return false;
    run(params);
    return true;
}

// Runs a kernel (its modc_sim_run_ entry) over a grid of blocks, block after block and thread
// after thread, each block in as many passes as it has barriers, plus one (see the top).
extern "C" __attribute__((visibility("default"), used)) void modc_sim_launch(void (*run)(void* const*),
                                                                           const unsigned* grid, const unsigned* block,
                                                                           void* const* params) {
    gridDim = dim3{grid[0], grid[1], grid[2]};
    blockDim = dim3{block[0], block[1], block[2]};
    for (unsigned bz = 0; bz < grid[2]; ++bz)
        for (unsigned by = 0; by < grid[1]; ++by)
            for (unsigned bx = 0; bx < grid[0]; ++bx)
                for (unsigned pass = 0;; ++pass) {
                    modc_sim_pass = pass;
                    unsigned finished = 0, threads = 0;
                    for (unsigned tz = 0; tz < block[2]; ++tz)
                        for (unsigned ty = 0; ty < block[1]; ++ty)
                            for (unsigned tx = 0; tx < block[0]; ++tx) {
                                blockIdx = uint3{bx, by, bz};
                                threadIdx = uint3{tx, ty, tz};
                                finished += modc_sim_thread(run, params) ? 1u : 0u;
                                ++threads;
                            }
                    if (finished == threads) break;
                    if (finished != 0) {
                        fprintf(stderr, "modc CUDA simulator: the threads of a block passed different numbers of __syncthreads\n");
                        abort();
                    }
                }
}
