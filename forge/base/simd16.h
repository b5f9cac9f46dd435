// Explicit 16-lane vectors (GCC vector extensions) for hot loops that must give the same bits on every
// x86 level: lane-wise IEEE operations, which the AVX-512 clone of a FORGE_HOT function runs as one zmm
// instruction, the AVX2 clone as two ymm ones and the default clone as four xmm ones. Nothing here
// reassociates or fuses (build with -ffp-contract=off), so the results equal the scalar loops they replace.
// Except comparisons: GCC 12 compiles a comparison of 16 lanes (float or integer) in the AVX2 and baseline
// clones as one scalar compare per lane. Code that compares (masks, selects) is built per vector width
// instead (quantize/row_kernels.cc), or gets its masks from shifts (dequantize_rows.cc's RoundBf16).
#pragma once

#include <cstdint>
#include <cstring>

#include "forge/base/float_access.h"

// 64-byte vectors only travel between always-inlined helpers inside one cloned function, so the calling-
// convention note GCC prints for them (-Wpsabi) concerns calls that never happen.
#pragma GCC diagnostic ignored "-Wpsabi"

#define FORGE_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#define FORGE_INLINE inline __attribute__((always_inline))

namespace forge::simd {

inline constexpr int kLanes = 16;

typedef float V16 __attribute__((vector_size(64)));
typedef uint32_t U16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));  // comparison results: -1 true, 0 false
typedef int32_t I8 __attribute__((vector_size(32)));
typedef int32_t I4 __attribute__((vector_size(16)));
typedef uint32_t U8 __attribute__((vector_size(32)));
typedef uint16_t H8 __attribute__((vector_size(16)));
typedef uint16_t H16 __attribute__((vector_size(32)));
typedef uint8_t B16 __attribute__((vector_size(16)));
typedef uint64_t Q2 __attribute__((vector_size(16)));

// 16 bytes at p, one per 32-bit lane (zero-extended). GCC 12 lowers a __builtin_convertvector from bytes to
// 32-bit lanes to byte loads and inserts; instead each lane takes the 32-bit word holding its byte (one
// cross-lane permute of the 16 bytes) and shifts the byte down (one variable shift).
FORGE_INLINE I16 ByteLanes(const uint8_t* p) {
  I4 words;
  __builtin_memcpy(&words, p, sizeof words);
  const I8 twice = __builtin_shufflevector(words, words, 0, 1, 2, 3, 0, 1, 2, 3);
  const I16 spread = __builtin_shufflevector(twice, twice, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const I16 shift = {0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24};
  return (spread >> shift) & 255;
}

// 16 4-bit codes packed in the 8 bytes at p (low nibble first), one per 32-bit lane: lane j is bits
// 4j..4j+3 of the little-endian 64-bit word, so each lane takes the 32-bit half holding it (broadcast from
// a register: built through memory, the 8-byte store and 64-byte load stall) and shifts.
FORGE_INLINE I16 NibbleLanes(const uint8_t* p) {
  uint64_t word;
  __builtin_memcpy(&word, p, sizeof word);
  const I8 lo = I8{} + static_cast<int32_t>(static_cast<uint32_t>(word));
  const I8 hi = I8{} + static_cast<int32_t>(static_cast<uint32_t>(word >> 32));
  const I16 spread = __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const I16 shift = {0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28};
  return (spread >> shift) & 15;
}

FORGE_INLINE V16 Load16(const float* p) {
  V16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
FORGE_INLINE void Store16(float* p, V16 v) { __builtin_memcpy(p, &v, sizeof v); }

// The 16 lanes summed by a fixed tree (+8, +4, +2, +1), the same on every x86 level.
FORGE_INLINE float Fold16(V16 v) {
  const float s0 = v[0] + v[8], s1 = v[1] + v[9], s2 = v[2] + v[10], s3 = v[3] + v[11];
  const float s4 = v[4] + v[12], s5 = v[5] + v[13], s6 = v[6] + v[14], s7 = v[7] + v[15];
  const float a0 = s0 + s4, a1 = s1 + s5, a2 = s2 + s6, a3 = s3 + s7;
  return (a0 + a2) + (a1 + a3);
}

FORGE_INLINE U16 Bits(V16 v) { return __builtin_bit_cast(U16, v); }
FORGE_INLINE V16 FromBits(U16 u) { return __builtin_bit_cast(V16, u); }

// bf16 -> f32 is exact: the 16 bits become the high half.
FORGE_INLINE void WidenBf16(const uint8_t* p, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    H8 h;
    __builtin_memcpy(&h, p + 2 * i, sizeof h);
    const U8 u = __builtin_convertvector(h, U8) << 16;
    __builtin_memcpy(out + i, &u, sizeof u);
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    std::memcpy(out + i, &u, 4);
  }
}

// n elements of any float dtype as float32 (exact): bf16 widened in vectors, f32 copied, others one by one.
FORGE_INLINE void WidenToF32(DType dtype, const uint8_t* p, int64_t n, float* out) {
  switch (dtype) {
    case DType::kBF16:
      WidenBf16(p, n, out);
      return;
    case DType::kF32:
      std::memcpy(out, p, static_cast<size_t>(n) * 4);
      return;
    default:
      for (int64_t i = 0; i < n; ++i) out[i] = LoadAsF32(dtype, p, static_cast<uint64_t>(i));
  }
}

}  // namespace forge::simd
