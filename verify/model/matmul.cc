#include "verify/model/matmul.h"

#include <algorithm>
#include <cstring>

#include "forge/base/float_access.h"
#include "forge/base/simd16.h"

namespace forge::verify::model {
namespace {

using namespace forge::simd;  // NOLINT: the vector vocabulary of this file

// Fold: +8, +4, +2, +1.
FORGE_INLINE float Fold16(V16 v) {
  const float s0 = v[0] + v[8], s1 = v[1] + v[9], s2 = v[2] + v[10], s3 = v[3] + v[11];
  const float s4 = v[4] + v[12], s5 = v[5] + v[13], s6 = v[6] + v[14], s7 = v[7] + v[15];
  const float a0 = s0 + s4, a1 = s1 + s5, a2 = s2 + s6, a3 = s3 + s7;
  return (a0 + a2) + (a1 + a3);
}

// A scalar tail (n not a multiple of 16) folds into the same lanes.
FORGE_INLINE float DotLanesInline(const float* a, const float* b, int64_t n) {
  V16 acc = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += Load16(a + i) * Load16(b + i);
  float tail[kLanes] = {};
  for (int j = 0; i < n; ++i, ++j) tail[j] = a[i] * b[i];
  acc += Load16(tail);
  return Fold16(acc);
}

struct Batch {
  const std::vector<const float*>& xs;
  const std::vector<float*>& ys;
};

FORGE_HOT void Bf16Rows(const Matrix& w, int64_t begin, int64_t end, const Batch& b, float* row) {
  const int64_t k = w.cols();
  for (int64_t r = begin; r < end; ++r) {
    WidenBf16(w.float_data() + static_cast<uint64_t>(w.first_row() + r) * k * 2, k, row);
    for (size_t t = 0; t < b.xs.size(); ++t) b.ys[t][r] = DotLanesInline(row, b.xs[t], k);
  }
}

FORGE_HOT void GenericRows(const Matrix& w, int64_t begin, int64_t end, const Batch& b, float* row) {
  const int64_t k = w.cols();
  for (int64_t r = begin; r < end; ++r) {
    w.Row(r, row);
    for (size_t t = 0; t < b.xs.size(); ++t) b.ys[t][r] = DotLanesInline(row, b.xs[t], k);
  }
}

// 16 affine codes starting at element i of a packed row, as floats (exact).
FORGE_INLINE V16 Codes16(const uint8_t* p, int64_t i, int bits) {
  if (bits == 4) {  // little-endian words, low nibble first: byte j holds codes 2j and 2j+1
    uint64_t word;
    std::memcpy(&word, p + i / 2, sizeof word);
    const Q2 q = {word, 0};
    const B16 bytes = reinterpret_cast<const B16&>(q);
    const B16 pairs = __builtin_shufflevector(bytes, bytes, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const U16 shifts = {0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4};
    return __builtin_convertvector((__builtin_convertvector(pairs, U16) >> shifts) & 15u, V16);
  }
  B16 b;
  std::memcpy(&b, p + i, sizeof b);
  return __builtin_convertvector(b, V16);
}

// Affine 4/8-bit: y = sum_g scale_g * dot(q_g, x_g) + bias_g * sum(x_g). Codes are unpacked in registers
// once per 16 weights and applied to N tokens at a time (a verify pass reads and unpacks each weight once
// for all its tokens); per group the 16 partial lanes are scaled into the row's lanes, so nothing is
// reduced until the row ends. A token's arithmetic is the same whatever N.
template <int N>
FORGE_INLINE void AffineRowTokens(const uint8_t* p, int64_t groups, int64_t gs, int bits, const float* scales,
                                  const float* biases, const float* const* x, const float* const* xsum,
                                  float* const* y, int64_t r) {
  V16 acc[N] = {};
  float bias_acc[N] = {};
  for (int64_t g = 0; g < groups; ++g) {
    V16 part[N] = {};
    for (int64_t i = g * gs; i < (g + 1) * gs; i += kLanes) {
      const V16 c = Codes16(p, i, bits);
      for (int t = 0; t < N; ++t) part[t] += c * Load16(x[t] + i);
    }
    for (int t = 0; t < N; ++t) {
      acc[t] += scales[g] * part[t];
      bias_acc[t] += biases[g] * xsum[t][g];
    }
  }
  for (int t = 0; t < N; ++t) y[t][r] = Fold16(acc[t]) + bias_acc[t];
}

FORGE_HOT void AffineRows(const Matrix& w, int64_t begin, int64_t end, const Batch& b,
                          const std::vector<std::vector<float>>& xsum, float* scales, float* biases) {
  const Matrix::Quantized& q = w.quant();
  const int64_t k = w.cols(), gs = q.params.group_size, groups = k / gs;
  const int bits = q.params.bits;
  const int64_t row_bytes = k * bits / 8;
  const size_t n = b.xs.size();
  std::vector<const float*> sums(n);
  for (size_t t = 0; t < n; ++t) sums[t] = xsum[t].data();
  for (int64_t r = begin; r < end; ++r) {
    const uint64_t gr = static_cast<uint64_t>(w.first_row() + r);
    const uint8_t* p = w.packed_data() + gr * static_cast<uint64_t>(row_bytes);
    const uint64_t g0 = gr * static_cast<uint64_t>(groups);
    const uint64_t scale_bytes = DTypeBits(q.scales_dtype) / 8;
    WidenToF32(q.scales_dtype, q.scales + g0 * scale_bytes, groups, scales);
    WidenToF32(q.scales_dtype, q.biases + g0 * scale_bytes, groups, biases);
    size_t t = 0;
    for (; t + 4 <= n; t += 4) {
      AffineRowTokens<4>(p, groups, gs, bits, scales, biases, &b.xs[t], &sums[t], &b.ys[t], r);
    }
    for (; t + 2 <= n; t += 2) {
      AffineRowTokens<2>(p, groups, gs, bits, scales, biases, &b.xs[t], &sums[t], &b.ys[t], r);
    }
    for (; t < n; ++t)
      AffineRowTokens<1>(p, groups, gs, bits, scales, biases, &b.xs[t], &sums[t], &b.ys[t], r);
  }
}

bool IsFastAffine(const Matrix& w) {
  if (!w.quantized()) return false;
  const auto& p = w.quant().params;
  return p.mode == quant::QuantMode::kAffine && (p.bits == 4 || p.bits == 8) && p.group_size % kLanes == 0;
}

}  // namespace

void MatMul::Run(const Matrix& w, const std::vector<const float*>& xs, const std::vector<float*>& ys) const {
  const int64_t rows = w.rows(), cols = w.cols();
  const Batch batch{xs, ys};
  const bool affine = IsFastAffine(w);
  std::vector<std::vector<float>> xsum;
  if (affine) {  // per token, per group: sum(x_g), once for all rows
    const int64_t gs = w.quant().params.group_size;
    std::vector<float> ones(static_cast<size_t>(gs), 1.0f);
    for (const float* x : xs) {
      std::vector<float> s(static_cast<size_t>(cols / gs));
      for (size_t g = 0; g < s.size(); ++g) s[g] = DotLanesInline(ones.data(), x + g * gs, gs);
      xsum.push_back(std::move(s));
    }
  }
  auto run_rows = [&](int64_t begin, int64_t end) {
    if (affine) {
      const size_t groups = static_cast<size_t>(cols / w.quant().params.group_size);
      std::vector<float> scales(groups), biases(groups);
      AffineRows(w, begin, end, batch, xsum, scales.data(), biases.data());
      return;
    }
    std::vector<float> row(static_cast<size_t>(cols));
    if (!w.quantized() && w.dtype() == DType::kBF16) {
      Bf16Rows(w, begin, end, batch, row.data());
    } else {
      GenericRows(w, begin, end, batch, row.data());
    }
  };
  // Splitting rows never changes a result (rows are independent); small products are not worth the hand-off.
  const int64_t work = rows * cols * static_cast<int64_t>(xs.size());
  const unsigned threads = pool_ ? pool_->size() : 1;
  if (threads <= 1 || work < (1 << 18) || rows < 2 * static_cast<int64_t>(threads)) {
    run_rows(0, rows);
    return;
  }
  const int64_t chunks = std::min<int64_t>(rows, static_cast<int64_t>(threads) * 4);
  Status st = pool_->RunAll(static_cast<size_t>(chunks), [&](size_t c) {
    run_rows(rows * static_cast<int64_t>(c) / chunks, rows * static_cast<int64_t>(c + 1) / chunks);
    return Status();
  });
  (void)st;  // the jobs cannot fail
}

}  // namespace forge::verify::model
