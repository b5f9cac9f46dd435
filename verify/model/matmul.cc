#include "verify/model/matmul.h"

#include <algorithm>
#include <cstring>

#include "forge/base/float_access.h"

namespace forge::verify::model {
namespace {

constexpr int kLanes = 16;

#define FORGE_HOT __attribute__((target_clones("avx2", "default")))
#define FORGE_INLINE inline __attribute__((always_inline))

// Explicit 8-wide vectors (GCC vector extensions): lane-wise mul and add, which the AVX2 clone runs as ymm
// instructions and the default clone as pairs of xmm ones, with the same results. 16 lanes = two vectors.
typedef float V8 __attribute__((vector_size(32)));
typedef uint32_t U8 __attribute__((vector_size(32)));
typedef uint16_t H8 __attribute__((vector_size(16)));

FORGE_INLINE V8 Load(const float* p) {
  V8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

FORGE_INLINE void Store(float* p, V8 v) { __builtin_memcpy(p, &v, sizeof v); }

// Lane j of the 16 accumulates elements i = j (mod 16); fold: +8, +4, +2, +1.
FORGE_INLINE float Fold(V8 lo, V8 hi) {
  const V8 s = lo + hi;
  const float a0 = s[0] + s[4], a1 = s[1] + s[5], a2 = s[2] + s[6], a3 = s[3] + s[7];
  return (a0 + a2) + (a1 + a3);
}

// n must be a multiple of 16 on the vector path; a scalar tail folds into the same lanes.
FORGE_INLINE float DotLanesInline(const float* a, const float* b, int64_t n) {
  V8 lo = {}, hi = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    lo += Load(a + i) * Load(b + i);
    hi += Load(a + i + 8) * Load(b + i + 8);
  }
  float tail[kLanes] = {};
  for (int j = 0; i < n; ++i, ++j) tail[j] = a[i] * b[i];
  lo += Load(tail);
  hi += Load(tail + 8);
  return Fold(lo, hi);
}

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

// 4-bit codes, little-endian 32-bit words, low nibble first: 8 codes per word.
FORGE_INLINE void WidenNibbles(const uint8_t* p, int64_t n, float* out) {
  const U8 shifts = {0, 4, 8, 12, 16, 20, 24, 28};
  for (int64_t w = 0; w < n / 8; ++w) {
    uint32_t word;
    std::memcpy(&word, p + 4 * w, 4);
    const U8 v = ((U8{} + word) >> shifts) & 15u;
    Store(out + 8 * w, __builtin_convertvector(v, V8));
  }
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

// Affine 4/8-bit: y = sum_g scale_g * dot(q_g, x_g) + bias_g * sum(x_g). The row's codes are widened once
// for all tokens; per group the 16 partial lanes are scaled into the row's lanes (no per-group reduction).
FORGE_HOT void AffineRows(const Matrix& w, int64_t begin, int64_t end, const Batch& b,
                          const std::vector<std::vector<float>>& xsum, float* codes, float* scales,
                          float* biases) {
  const Matrix::Quantized& q = w.quant();
  const int64_t k = w.cols(), gs = q.params.group_size, groups = k / gs;
  const int bits = q.params.bits;
  const int64_t row_bytes = k * bits / 8;
  const DType sd = q.scales_dtype;
  for (int64_t r = begin; r < end; ++r) {
    const uint64_t gr = static_cast<uint64_t>(w.first_row() + r);
    const uint8_t* p = w.packed_data() + gr * static_cast<uint64_t>(row_bytes);
    if (bits == 4) {
      WidenNibbles(p, k, codes);
    } else {
      for (int64_t i = 0; i < k; ++i) codes[i] = static_cast<float>(p[i]);
    }
    for (int64_t g = 0; g < groups; ++g) {
      const uint64_t gi = gr * static_cast<uint64_t>(groups) + static_cast<uint64_t>(g);
      scales[g] = LoadAsF32(sd, q.scales, gi);
      biases[g] = LoadAsF32(sd, q.biases, gi);
    }
    for (size_t t = 0; t < b.xs.size(); ++t) {
      const float* x = b.xs[t];
      const float* xs = xsum[t].data();
      V8 lo = {}, hi = {};
      float bias_acc = 0;
      for (int64_t g = 0; g < groups; ++g) {
        V8 plo = {}, phi = {};
        const float* c = codes + g * gs;
        const float* xg = x + g * gs;
        for (int64_t i = 0; i < gs; i += kLanes) {
          plo += Load(c + i) * Load(xg + i);
          phi += Load(c + i + 8) * Load(xg + i + 8);
        }
        const V8 sc = V8{} + scales[g];
        lo += sc * plo;
        hi += sc * phi;
        bias_acc += biases[g] * xs[g];
      }
      b.ys[t][r] = Fold(lo, hi) + bias_acc;
    }
  }
}

bool IsFastAffine(const Matrix& w) {
  if (!w.quantized()) return false;
  const auto& p = w.quant().params;
  return p.mode == quant::QuantMode::kAffine && (p.bits == 4 || p.bits == 8) && p.group_size % kLanes == 0;
}

}  // namespace

float DotLanes(const float* a, const float* b, int64_t n) { return DotLanesInline(a, b, n); }

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
    std::vector<float> row(static_cast<size_t>(cols));
    if (affine) {
      const size_t groups = static_cast<size_t>(cols / w.quant().params.group_size);
      std::vector<float> scales(groups), biases(groups);
      AffineRows(w, begin, end, batch, xsum, row.data(), scales.data(), biases.data());
    } else if (!w.quantized() && w.dtype() == DType::kBF16) {
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
