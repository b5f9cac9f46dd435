#include "verify/model/matmul.h"

#include <algorithm>
#include <cstring>

#include "forge/base/float_access.h"
#include "forge/base/simd16.h"
#include "verify/model/affine_rows.h"

namespace forge::verify::model {
namespace {

using namespace forge::simd;  // NOLINT: the vector vocabulary of this file

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

}  // namespace

void MatMul::Run(const Matrix& w, const std::vector<const float*>& xs, const std::vector<float*>& ys) const {
  const int64_t rows = w.rows(), cols = w.cols();
  const Batch batch{xs, ys};
  const bool affine = HasAffineKernel(w);
  // Affine: per token, per group, sum(x_g) once for all rows; 4-bit x in the codes' even/odd order.
  std::vector<std::vector<float>> xsum, permuted;
  std::vector<const float*> ax, sums;  // what the kernel reads
  if (affine) {
    const int64_t gs = w.quant().params.group_size;
    std::vector<float> ones(static_cast<size_t>(gs), 1.0f);
    xsum.reserve(xs.size());
    permuted.reserve(xs.size());
    for (const float* x : xs) {
      std::vector<float> s(static_cast<size_t>(cols / gs));
      for (size_t g = 0; g < s.size(); ++g) s[g] = DotLanesInline(ones.data(), x + g * gs, gs);
      xsum.push_back(std::move(s));
      sums.push_back(xsum.back().data());
      if (w.quant().params.bits == 4) {
        permuted.push_back(EvenOddBlocks(x, cols));
        ax.push_back(permuted.back().data());
      } else {
        ax.push_back(x);
      }
    }
  }
  auto run_rows = [&](int64_t begin, int64_t end) {
    if (affine) {
      const size_t groups = static_cast<size_t>(cols / w.quant().params.group_size);
      std::vector<float> scales(groups), biases(groups);
      AffineRows(w, begin, end, AffineBatch{ax.data(), sums.data(), ys.data(), ys.size()}, scales.data(),
                 biases.data());
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
  ParallelFor(pool_, static_cast<size_t>(chunks), [&](size_t c) {
    run_rows(rows * static_cast<int64_t>(c) / chunks, rows * static_cast<int64_t>(c + 1) / chunks);
  });
}

}  // namespace forge::verify::model
