#include "verify/model/affine_rows.h"

#include <atomic>

#include "forge/base/simd16.h"

namespace forge::verify::model {
namespace {

using namespace forge::simd;  // NOLINT: the vector vocabulary of this file

// 8-bit: 16 codes from 16 bytes, as floats (exact).
FORGE_INLINE V16 Bytes16(const uint8_t* p) { return __builtin_convertvector(ByteLanes(p), V16); }

// 4-bit: the 16 even codes (low nibbles) and the 16 odd ones (high nibbles) of 16 bytes, as floats.
FORGE_INLINE void Nibbles32(const uint8_t* p, V16* even, V16* odd) {
  const I16 b = ByteLanes(p);
  *even = __builtin_convertvector(b & 15, V16);
  *odd = __builtin_convertvector(b >> 4, V16);
}

// One row for N tokens. Per group the 16 partial lanes are scaled into the row's lanes, so nothing is
// reduced until the row ends; a token's arithmetic is the same whatever N.
template <int N, int kBits>
FORGE_INLINE void RowTokens(const uint8_t* p, int64_t groups, int64_t gs, const float* scales,
                            const float* biases, const AffineBatch& b, size_t t0, int64_t r) {
  V16 acc[N] = {};
  float bias_acc[N] = {};
  for (int64_t g = 0; g < groups; ++g) {
    V16 part[N] = {};
    const int64_t end = (g + 1) * gs;
    if constexpr (kBits == 4) {
      for (int64_t i = g * gs; i < end; i += 2 * kLanes) {
        V16 even, odd;
        Nibbles32(p + i / 2, &even, &odd);
        for (int t = 0; t < N; ++t) {
          part[t] += even * Load16(b.xs[t0 + t] + i);
          part[t] += odd * Load16(b.xs[t0 + t] + i + kLanes);
        }
      }
    } else {
      for (int64_t i = g * gs; i < end; i += kLanes) {
        const V16 c = Bytes16(p + i);
        for (int t = 0; t < N; ++t) part[t] += c * Load16(b.xs[t0 + t] + i);
      }
    }
    for (int t = 0; t < N; ++t) {
      acc[t] += scales[g] * part[t];
      bias_acc[t] += biases[g] * b.xsums[t0 + t][g];
    }
  }
  for (int t = 0; t < N; ++t) b.ys[t0 + t][r] = Fold16(acc[t]) + bias_acc[t];
}

template <int kBits>
FORGE_INLINE void RowsOf(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b, float* scales,
                         float* biases) {
  const int64_t gs = w.quant().params.group_size, groups = w.cols() / gs;
  for (int64_t r = begin; r < end; ++r) {
    const AffineRow row = LoadAffineRow(w, r, scales, biases);
    const uint8_t* p = row.codes;
    size_t t = 0;
    for (; t + 4 <= b.n; t += 4) RowTokens<4, kBits>(p, groups, gs, scales, biases, b, t, r);
    for (; t + 2 <= b.n; t += 2) RowTokens<2, kBits>(p, groups, gs, scales, biases, b, t, r);
    for (; t < b.n; ++t) RowTokens<1, kBits>(p, groups, gs, scales, biases, b, t, r);
  }
}

std::atomic<AffineKernel> g_kernel{AffineKernel::kBest};

}  // namespace

FORGE_HOT void AffineRowsPortable(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b,
                                  float* scales, float* biases) {
  if (w.quant().params.bits == 4) {
    RowsOf<4>(w, begin, end, b, scales, biases);
  } else {
    RowsOf<8>(w, begin, end, b, scales, biases);
  }
}

bool HasAffineKernel(const Matrix& w) {
  if (!w.quantized()) return false;
  const auto& p = w.quant().params;
  return p.mode == quant::QuantMode::kAffine &&
         ((p.bits == 4 && p.group_size % (2 * kLanes) == 0) || (p.bits == 8 && p.group_size % kLanes == 0));
}

std::vector<float> EvenOddBlocks(const float* x, int64_t k) {
  std::vector<float> out(static_cast<size_t>(k));
  for (int64_t b = 0; b < k; b += 2 * kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      out[b + j] = x[b + 2 * j];
      out[b + kLanes + j] = x[b + 2 * j + 1];
    }
  }
  return out;
}

bool CpuHasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return has;
}

bool AffineKernelRuns(AffineKernel kernel) {
  switch (kernel) {
    case AffineKernel::kAvx512:
      return CpuHasAvx512();
    case AffineKernel::kAvx2: {
      static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
      return has;
    }
    default:
      return true;
  }
}

AffineKernel BestAffineKernel() {
  static const AffineKernel best = AffineKernelRuns(AffineKernel::kAvx512) ? AffineKernel::kAvx512
                                   : AffineKernelRuns(AffineKernel::kAvx2) ? AffineKernel::kAvx2
                                                                           : AffineKernel::kPortable;
  return best;
}

const char* AffineKernelName(AffineKernel kernel) {
  if (kernel == AffineKernel::kBest) kernel = BestAffineKernel();
  return kernel == AffineKernel::kAvx512 ? "avx512" : kernel == AffineKernel::kAvx2 ? "avx2" : "portable";
}

void SetAffineKernel(AffineKernel kernel) { g_kernel.store(kernel); }

void AffineRows(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b, float* scales,
                float* biases) {
  AffineKernel kernel = g_kernel.load(std::memory_order_relaxed);
  if (kernel == AffineKernel::kBest) kernel = BestAffineKernel();
  switch (kernel) {
    case AffineKernel::kAvx512:
      AffineRowsAvx512(w, begin, end, b, scales, biases);
      return;
    case AffineKernel::kAvx2:
      AffineRowsAvx2(w, begin, end, b, scales, biases);
      return;
    default:
      AffineRowsPortable(w, begin, end, b, scales, biases);
  }
}

}  // namespace forge::verify::model
