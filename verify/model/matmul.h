// y = W x for one or several tokens, the decoder's hot loop. Each weight row is read once per call and
// applied to every token (a verify pass reads the weights once for all its tokens), rows are spread over
// the thread pool, and every token's result is computed by the same instruction sequence whatever the
// batch or the thread split: 16 fixed f32 lanes, a fixed reduction tree.
//
// Storage-specific kernels: bf16 rows are widened in registers; MLX affine 4/8-bit rows are never
// dequantized (affine_rows.h: scale * dot(q, x) + bias * sum(x), sum(x) per group computed once per call);
// other formats dequantize a row with the codec, then dot. The bf16 and generic kernels use GCC's explicit
// 16-lane vectors, cloned for AVX-512 and AVX2 (ifunc dispatch), lane-wise mul/add without FMA contraction:
// every clone computes the same bits.
#pragma once

#include <vector>

#include "forge/base/thread_pool.h"
#include "verify/model/matrix.h"

namespace forge::verify::model {

// One product of a group: w applied to every x of xs, into the matching y of ys.
struct Product {
  const Matrix* w;
  std::vector<const float*> xs;
  std::vector<float*> ys;
};

class MatMul {
 public:
  explicit MatMul(ThreadPool* pool) : pool_(pool) {}
  void Run(const Matrix& w, const std::vector<const float*>& xs, const std::vector<float*>& ys) const {
    RunGroup({Product{&w, xs, ys}});
  }
  // Several products in one parallel region: their rows are split over the pool together, so a layer's
  // projections (q, k, v; gate and up; a token's experts) cost one synchronization, not one each. Every
  // result is the one the product gives alone.
  void RunGroup(const std::vector<Product>& products) const;
  void Run(const Matrix& w, const float* x, float* y) const {
    Run(w, std::vector<const float*>{x}, std::vector<float*>{y});
  }
  ThreadPool* pool() const { return pool_; }

 private:
  ThreadPool* pool_;
};

}  // namespace forge::verify::model
