// bfloat16 on the host: the upper 16 bits of an IEEE f32, held as std::uint16_t.
//
// The same two conversions as the ones the CUDA generator writes into its kernels
// (compiler/backend/codegen_cuda.cpp, modc_bf16_to_f32 / modc_f32_to_bf16), so that a bf16 update
// is the same bits whichever backend computed its f32 value:
//   - bf16 -> f32 is exact: the bits shifted up by 16;
//   - f32 -> bf16 rounds to nearest, ties to even; a NaN stays a NaN (quiet, sign kept),
//     infinities stay infinite, and a finite value past the largest bf16 becomes infinite.
#pragma once
#include <cstdint>
#include <cstring>

namespace modc {

inline float bf16_to_f32(std::uint16_t h) {
    const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline std::uint16_t f32_to_bf16(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    // A NaN whose payload sits in the low half would round to infinity: keep it a NaN.
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace modc
