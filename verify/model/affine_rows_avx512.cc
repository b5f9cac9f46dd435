// The AVX-512 affine kernel (see affine_rows.h). Per 16 bytes of 4-bit codes: one zero-extending load
// (vpmovzxbd), the low nibbles looked up in a 16-entry table of scale * code by a permute that reads only
// the low 4 bits of each lane (no mask, no int -> float conversion, no per-group scaling), the high nibbles
// the same after one shift, and two fused multiply-adds per token. That is 6 vector instructions per 32
// weights, 2 of them the FMAs any f32 kernel needs; on this project's Zen 4 machine the loop runs at ~75 %
// of the measured FMA peak (bench/decoder_roofline prints both ceilings).
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics pass an _mm512_undefined_*() operand as the unused merge source, which its own
// -Wmaybe-uninitialized then reports at every call site (a known false positive of those headers).
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "forge/base/simd16.h"
#include "verify/model/affine_rows.h"

#define FORGE_AVX512 __attribute__((target("avx512f,fma")))
#define FORGE_AVX512_INLINE __attribute__((target("avx512f,fma"), always_inline)) inline

namespace forge::verify::model {
namespace {

FORGE_AVX512_INLINE __m512i ByteLanes(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// sum_g bias_g * xsum_g for one token, 16 groups at a time (the tail masked), into lanes.
FORGE_AVX512_INLINE __m512 BiasLanes(const float* biases, const float* xsum, int64_t groups) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; g += 16) {
    const __mmask16 m = groups - g >= 16 ? __mmask16(0xffff) : __mmask16((1u << (groups - g)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, biases + g), _mm512_maskz_loadu_ps(m, xsum + g), acc);
  }
  return acc;
}

// 4 bits: one 32-weight block (16 bytes) for N tokens. The codes index `table` (scale * 0..15 of the
// block's group) directly: the permute reads only the low 4 bits of each lane, so the low nibbles need no
// mask and no int -> float conversion, and the scale needs no multiply per group.
template <int N>
FORGE_AVX512_INLINE void Block4(const uint8_t* q, __m512 table, const float* const* x, int64_t i,
                                __m512* even, __m512* odd) {
  const __m512i bytes = ByteLanes(q);
  const __m512 lo = _mm512_permutexvar_ps(bytes, table);
  const __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table);
#pragma GCC unroll 4
  for (int t = 0; t < N; ++t) {
    even[t] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x[t] + i), even[t]);
    odd[t] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x[t] + i + 16), odd[t]);
  }
}

// One 4-bit row for N tokens: y = sum_j (scale_g(j) * q_j) x_j + sum_g bias_g * sum(x_g). Blocks alternate
// between two sets of even/odd accumulators (four independent FMA chains per token); nothing is reduced
// until the row ends. A token's arithmetic is the same whatever N.
template <int N>
FORGE_AVX512_INLINE void Row4Tokens(const uint8_t* p, int64_t groups, int64_t gs, const float* scales,
                                    const float* biases, const AffineBatch& b, size_t t0, int64_t r) {
  const __m512 codes = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const float* x[N];
  __m512 e0[N], o0[N], e1[N], o1[N];
#pragma GCC unroll 4
  for (int t = 0; t < N; ++t) {
    x[t] = b.xs[t0 + t];
    e0[t] = o0[t] = e1[t] = o1[t] = _mm512_setzero_ps();
  }
  if (gs % 64 == 0) {  // block pairs never straddle a group
    for (int64_t g = 0; g < groups; ++g) {
      const __m512 table = _mm512_mul_ps(_mm512_set1_ps(scales[g]), codes);
      for (int64_t i = g * gs; i < (g + 1) * gs; i += 64) {
        Block4<N>(p + i / 2, table, x, i, e0, o0);
        Block4<N>(p + i / 2 + 16, table, x, i + 32, e1, o1);
      }
    }
  } else {
    int64_t block = 0;
    for (int64_t g = 0; g < groups; ++g) {
      const __m512 table = _mm512_mul_ps(_mm512_set1_ps(scales[g]), codes);
      for (int64_t i = g * gs; i < (g + 1) * gs; i += 32, ++block) {
        if (block % 2 == 0) {
          Block4<N>(p + i / 2, table, x, i, e0, o0);
        } else {
          Block4<N>(p + i / 2, table, x, i, e1, o1);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < N; ++t) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(e0[t], o0[t]), _mm512_add_ps(e1[t], o1[t]));
    const __m512 bias = BiasLanes(biases, b.xsums[t0 + t], groups);
    b.ys[t0 + t][r] = _mm512_reduce_add_ps(_mm512_add_ps(sum, bias));
  }
}

// 8 bits: per group, dot(q, x) in two alternating accumulators, then scaled into the row's lanes.
template <int N>
FORGE_AVX512_INLINE void Row8Tokens(const uint8_t* p, int64_t groups, int64_t gs, const float* scales,
                                    const float* biases, const AffineBatch& b, size_t t0, int64_t r) {
  const float* x[N];
  __m512 acc[N];
#pragma GCC unroll 4
  for (int t = 0; t < N; ++t) {
    x[t] = b.xs[t0 + t];
    acc[t] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m512 even[N], odd[N];
#pragma GCC unroll 4
    for (int t = 0; t < N; ++t) even[t] = odd[t] = _mm512_setzero_ps();
    const int64_t end = (g + 1) * gs;
    int64_t i = g * gs;
    for (; i + 32 <= end; i += 32) {
      const __m512 c0 = _mm512_cvtepi32_ps(ByteLanes(p + i));
      const __m512 c1 = _mm512_cvtepi32_ps(ByteLanes(p + i + 16));
#pragma GCC unroll 4
      for (int t = 0; t < N; ++t) {
        even[t] = _mm512_fmadd_ps(c0, _mm512_loadu_ps(x[t] + i), even[t]);
        odd[t] = _mm512_fmadd_ps(c1, _mm512_loadu_ps(x[t] + i + 16), odd[t]);
      }
    }
    if (i < end) {
      const __m512 c0 = _mm512_cvtepi32_ps(ByteLanes(p + i));
#pragma GCC unroll 4
      for (int t = 0; t < N; ++t) even[t] = _mm512_fmadd_ps(c0, _mm512_loadu_ps(x[t] + i), even[t]);
    }
    const __m512 scale = _mm512_set1_ps(scales[g]);
#pragma GCC unroll 4
    for (int t = 0; t < N; ++t) acc[t] = _mm512_fmadd_ps(scale, _mm512_add_ps(even[t], odd[t]), acc[t]);
  }
#pragma GCC unroll 4
  for (int t = 0; t < N; ++t) {
    const __m512 bias = BiasLanes(biases, b.xsums[t0 + t], groups);
    b.ys[t0 + t][r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t], bias));
  }
}

template <int N, int kBits>
FORGE_AVX512_INLINE void RowTokens(const uint8_t* p, int64_t groups, int64_t gs, const float* scales,
                                   const float* biases, const AffineBatch& b, size_t t0, int64_t r) {
  if constexpr (kBits == 4) {
    Row4Tokens<N>(p, groups, gs, scales, biases, b, t0, r);
  } else {
    Row8Tokens<N>(p, groups, gs, scales, biases, b, t0, r);
  }
}

template <int kBits>
FORGE_AVX512_INLINE void RowsOf(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b,
                                float* scales, float* biases) {
  const int64_t gs = w.quant().params.group_size, groups = w.cols() / gs;
  for (int64_t r = begin; r < end; ++r) {
    const AffineRow row = LoadAffineRow(w, r, scales, biases);
    const uint8_t* p = row.codes;
    PrefetchRowAhead(row, r, end);
    size_t t = 0;
    for (; t + 4 <= b.n; t += 4) RowTokens<4, kBits>(p, groups, gs, scales, biases, b, t, r);
    for (; t + 2 <= b.n; t += 2) RowTokens<2, kBits>(p, groups, gs, scales, biases, b, t, r);
    for (; t < b.n; ++t) RowTokens<1, kBits>(p, groups, gs, scales, biases, b, t, r);
  }
}

}  // namespace

FORGE_AVX512 void AffineRowsAvx512(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b,
                                   float* scales, float* biases) {
  if (w.quant().params.bits == 4) {
    RowsOf<4>(w, begin, end, b, scales, biases);
  } else {
    RowsOf<8>(w, begin, end, b, scales, biases);
  }
}

}  // namespace forge::verify::model
