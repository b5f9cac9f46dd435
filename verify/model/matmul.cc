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


// What a product's kernel reads besides the weights: for affine, per token the sums of x over each group
// (once for all rows) and, for 4 bits, x in the codes' even/odd order.
struct Prepared {
  const Product* p;
  bool affine = false;
  std::vector<std::vector<float>> xsum, permuted;
  std::vector<const float*> ax, sums;
};

Prepared Prepare(const Product& product) {
  Prepared pr;
  pr.p = &product;
  const Matrix& w = *product.w;
  pr.affine = HasAffineKernel(w);
  if (!pr.affine) return pr;
  const int64_t cols = w.cols(), gs = w.quant().params.group_size;
  std::vector<float> ones(static_cast<size_t>(gs), 1.0f);
  pr.xsum.reserve(product.xs.size());
  pr.permuted.reserve(product.xs.size());
  for (const float* x : product.xs) {
    std::vector<float> s(static_cast<size_t>(cols / gs));
    for (size_t g = 0; g < s.size(); ++g) s[g] = DotLanesInline(ones.data(), x + g * gs, gs);
    pr.xsum.push_back(std::move(s));
    pr.sums.push_back(pr.xsum.back().data());
    if (w.quant().params.bits == 4) {
      pr.permuted.push_back(EvenOddBlocks(x, cols));
      pr.ax.push_back(pr.permuted.back().data());
    } else {
      pr.ax.push_back(x);
    }
  }
  return pr;
}

void RunRows(const Prepared& pr, int64_t begin, int64_t end) {
  const Matrix& w = *pr.p->w;
  const int64_t cols = w.cols();
  if (pr.affine) {
    const size_t groups = static_cast<size_t>(cols / w.quant().params.group_size);
    std::vector<float> scales(groups), biases(groups);
    AffineRows(w, begin, end, AffineBatch{pr.ax.data(), pr.sums.data(), pr.p->ys.data(), pr.p->ys.size()},
               scales.data(), biases.data());
    return;
  }
  const Batch batch{pr.p->xs, pr.p->ys};
  std::vector<float> row(static_cast<size_t>(cols));
  if (!w.quantized() && w.dtype() == DType::kBF16) {
    Bf16Rows(w, begin, end, batch, row.data());
  } else {
    GenericRows(w, begin, end, batch, row.data());
  }
}

}  // namespace

void MatMul::RunGroup(const std::vector<Product>& products) const {
  std::vector<Prepared> prepared;
  prepared.reserve(products.size());
  int64_t work = 0;
  for (const Product& p : products) {
    if (p.xs.empty() || p.w->rows() == 0) continue;
    prepared.push_back(Prepare(p));
    work += p.w->rows() * p.w->cols() * static_cast<int64_t>(p.xs.size());
  }
  // Splitting rows never changes a result (rows are independent); small groups are not worth the hand-off.
  const unsigned threads = pool_ ? pool_->size() : 1;
  if (threads <= 1 || work < (1 << 18)) {
    for (const Prepared& pr : prepared) RunRows(pr, 0, pr.p->w->rows());
    return;
  }
  // About four chunks per thread over the whole group, each product cut in proportion to its work.
  struct Chunk {
    const Prepared* pr;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  const int64_t target = std::max<int64_t>(1, work / (static_cast<int64_t>(threads) * 4));
  for (const Prepared& pr : prepared) {
    const int64_t rows = pr.p->w->rows(), per_row = pr.p->w->cols() * static_cast<int64_t>(pr.p->xs.size());
    const int64_t n = std::clamp<int64_t>(rows * per_row / target, 1, rows);
    for (int64_t c = 0; c < n; ++c) chunks.push_back({&pr, rows * c / n, rows * (c + 1) / n});
  }
  ParallelFor(pool_, chunks.size(), [&](size_t c) { RunRows(*chunks[c].pr, chunks[c].begin, chunks[c].end); });
}

}  // namespace forge::verify::model
