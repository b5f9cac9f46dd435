// The AVX2 affine kernel (see affine_rows.h), for x86 CPUs without AVX-512 (Zen 2/3, most desktop Intel).
// The portable kernel's 16-lane vectors need twice AVX2's 16 registers for a 4-token batch and spill
// every accumulator (5 % of the memory roofline on a Zen 3 VM); this one is written for 8 lanes and 16
// registers. 4 bits, per 16 bytes of codes (32 weights): two zero-extending loads of 8 bytes, a mask and a
// shift for each, four int -> float conversions, and per token four fused multiply-adds into the group's
// partial sums, which are scaled into the row's lanes once per group (AVX2 has no 16-entry permute to fold
// the scale into a code table as the AVX-512 kernel does). Tokens run in pairs, so a pair's four partial
// vectors, its two row accumulators and the codes fit in registers; a token's arithmetic is the same alone
// or in any batch.
#include <immintrin.h>

#include <cmath>

#include "verify/model/affine_rows.h"

#define FORGE_AVX2 __attribute__((target("avx2,fma")))
#define FORGE_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace forge::verify::model {
namespace {

// 8 bytes at p, one per 32-bit lane (zero-extended).
FORGE_AVX2_INLINE __m256i ByteLanes8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

FORGE_AVX2_INLINE float Fold8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// sum_g bias_g * xsum_g for one token: 8 groups at a time in lanes, the tail in order after the fold.
FORGE_AVX2_INLINE float BiasSum(const float* biases, const float* xsum, int64_t groups) {
  __m256 acc = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= groups; g += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(biases + g), _mm256_loadu_ps(xsum + g), acc);
  float sum = Fold8(acc);
  for (; g < groups; ++g) sum = std::fma(biases[g], xsum[g], sum);
  return sum;
}

// 4 bits: one group of `gs` weights for N tokens (xs in EvenOddBlocks order: per 32-element block, its 16
// even elements then its 16 odd ones). Byte j of a block holds code 2j (low nibble) and 2j+1 (high), so
// bytes 0-7 give even lanes 0-7 and odd lanes 0-7, bytes 8-15 lanes 8-15. Two sets of partial sums
// alternate by 16-byte half so that each token has four independent chains.
template <int N>
FORGE_AVX2_INLINE void Group4(const uint8_t* p, int64_t begin, int64_t gs, const float* const* x,
                              __m256* part) {
  const __m256i low = _mm256_set1_epi32(15);
  for (int64_t i = begin; i < begin + gs; i += 32) {
    const uint8_t* q = p + i / 2;
    const __m256i b0 = ByteLanes8(q), b1 = ByteLanes8(q + 8);
    const __m256 e0 = _mm256_cvtepi32_ps(_mm256_and_si256(b0, low));
    const __m256 o0 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b0, 4));
    const __m256 e1 = _mm256_cvtepi32_ps(_mm256_and_si256(b1, low));
    const __m256 o1 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b1, 4));
#pragma GCC unroll 2
    for (int t = 0; t < N; ++t) {
      part[4 * t + 0] = _mm256_fmadd_ps(e0, _mm256_loadu_ps(x[t] + i), part[4 * t + 0]);
      part[4 * t + 1] = _mm256_fmadd_ps(e1, _mm256_loadu_ps(x[t] + i + 8), part[4 * t + 1]);
      part[4 * t + 2] = _mm256_fmadd_ps(o0, _mm256_loadu_ps(x[t] + i + 16), part[4 * t + 2]);
      part[4 * t + 3] = _mm256_fmadd_ps(o1, _mm256_loadu_ps(x[t] + i + 24), part[4 * t + 3]);
    }
  }
}

// 8 bits: one group for N tokens, 16 weights per step in two chains per token (gs % 16 == 0).
template <int N>
FORGE_AVX2_INLINE void Group8(const uint8_t* p, int64_t begin, int64_t gs, const float* const* x,
                              __m256* part) {
  for (int64_t i = begin; i < begin + gs; i += 16) {
    const __m256 c0 = _mm256_cvtepi32_ps(ByteLanes8(p + i));
    const __m256 c1 = _mm256_cvtepi32_ps(ByteLanes8(p + i + 8));
#pragma GCC unroll 2
    for (int t = 0; t < N; ++t) {
      part[4 * t + 0] = _mm256_fmadd_ps(c0, _mm256_loadu_ps(x[t] + i), part[4 * t + 0]);
      part[4 * t + 1] = _mm256_fmadd_ps(c1, _mm256_loadu_ps(x[t] + i + 8), part[4 * t + 1]);
    }
  }
}

// One row for N (1 or 2) tokens: y = sum_g scale_g * dot(q_g, x_g) + sum_g bias_g * sum(x_g).
template <int N, int kBits>
FORGE_AVX2_INLINE void RowTokens(const uint8_t* p, int64_t groups, int64_t gs, const float* scales,
                                 const float* biases, const AffineBatch& b, size_t t0, int64_t r) {
  const float* x[N];
  __m256 acc[N];
#pragma GCC unroll 2
  for (int t = 0; t < N; ++t) x[t] = b.xs[t0 + t], acc[t] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m256 part[4 * N];
#pragma GCC unroll 8
    for (int k = 0; k < 4 * N; ++k) part[k] = _mm256_setzero_ps();
    if constexpr (kBits == 4) {
      Group4<N>(p, g * gs, gs, x, part);
    } else {
      Group8<N>(p, g * gs, gs, x, part);
    }
    const __m256 scale = _mm256_set1_ps(scales[g]);
#pragma GCC unroll 2
    for (int t = 0; t < N; ++t) {
      const __m256 dot = _mm256_add_ps(_mm256_add_ps(part[4 * t], part[4 * t + 1]),
                                       _mm256_add_ps(part[4 * t + 2], part[4 * t + 3]));
      acc[t] = _mm256_fmadd_ps(scale, dot, acc[t]);
    }
  }
#pragma GCC unroll 2
  for (int t = 0; t < N; ++t) b.ys[t0 + t][r] = Fold8(acc[t]) + BiasSum(biases, b.xsums[t0 + t], groups);
}

template <int kBits>
FORGE_AVX2_INLINE void RowsOf(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b,
                              float* scales, float* biases) {
  const int64_t gs = w.quant().params.group_size, groups = w.cols() / gs;
  for (int64_t r = begin; r < end; ++r) {
    const AffineRow row = LoadAffineRow(w, r, scales, biases);
    const uint8_t* p = row.codes;
    PrefetchRowAhead(row, r, end);
    size_t t = 0;
    for (; t + 2 <= b.n; t += 2) RowTokens<2, kBits>(p, groups, gs, scales, biases, b, t, r);
    for (; t < b.n; ++t) RowTokens<1, kBits>(p, groups, gs, scales, biases, b, t, r);
  }
}

}  // namespace

FORGE_AVX2 void AffineRowsAvx2(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b,
                               float* scales, float* biases) {
  if (w.quant().params.bits == 4) {
    RowsOf<4>(w, begin, end, b, scales, biases);
  } else {
    RowsOf<8>(w, begin, end, b, scales, biases);
  }
}

}  // namespace forge::verify::model
