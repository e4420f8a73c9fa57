// cuda_host.h: runs modc's generated CUDA C++ on the CPU, for the tests.
//
// The generated source includes nothing and uses only: __global__, __launch_bounds__,
// __restrict__, __device__, __forceinline__, threadIdx/blockIdx/blockDim/gridDim,
// sqrtf/sqrt/fabsf/fabs, atomicAdd, atomicMax, atomicMin, __float_as_uint, __uint_as_float and
// __double_as_longlong. This header maps each onto
// plain C++, so that the very text NVRTC compiles can be compiled by the host compiler:
//
//     c++ -O1 -shared -fPIC -include cuda_host.h -x c++ kernels.cu -o kernels.so
//
// and modc_host_launch() runs one kernel over its launch configuration, block after block and
// thread after thread. The generated kernels use no shared memory and no __syncthreads, so
// running the threads one after the other is exact: every thread's work is independent apart
// from atomics, and the atomics are plain read-modify-writes here.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
};

inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

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

// Runs `kernel` (every parameter of a generated kernel is a pointer) on a grid of blocks.
extern "C" __attribute__((visibility("default"), used)) void modc_host_launch(void (*kernel)(), const unsigned* grid,
                                                                                const unsigned* block, int argc,
                                                                                void* const* argv) {
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
                            switch (argc) {
                                case 1: reinterpret_cast<void (*)(void*)>(kernel)(argv[0]); break;
                                case 2: reinterpret_cast<void (*)(void*, void*)>(kernel)(argv[0], argv[1]); break;
                                case 3:
                                    reinterpret_cast<void (*)(void*, void*, void*)>(kernel)(argv[0], argv[1], argv[2]);
                                    break;
                                case 4:
                                    reinterpret_cast<void (*)(void*, void*, void*, void*)>(kernel)(argv[0], argv[1], argv[2],
                                                                                                  argv[3]);
                                    break;
                                default: __builtin_trap();
                            }
                        }
}
