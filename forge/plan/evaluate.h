// Materializes one plan expression. Sources are zero-copy views into the mapped shard; every other
// operation allocates its output. Byte-layout operations (moveaxis, stack, slice, reshape) move elements
// without interpreting them; cast and add-constant go through f32 with round-to-nearest-even.
// Thread-safe: evaluations share nothing but the read-only mappings.
#pragma once

#include <memory>
#include <vector>

#include "forge/base/float_access.h"
#include "forge/plan/expr.h"

namespace forge::plan {

struct Tensor {
  TensorMeta meta;
  const uint8_t* data = nullptr;
  std::shared_ptr<std::vector<uint8_t>> owned;  // null for views into a mapping

  static Tensor Allocate(TensorMeta meta);
  uint8_t* mutable_data() { return owned->data(); }
};

Result<Tensor> Evaluate(const Expr& e);

// The byte-moving and elementwise kernels of Evaluate on materialized inputs (`out_meta`: the result's).
// EvaluateRange runs them on pieces whose leading axes are collapsed into one.
Tensor MoveAxisOf(const Tensor& in, const TensorMeta& out_meta, int from, int to);
Tensor SliceOf(const Tensor& in, const TensorMeta& out_meta, int axis, uint64_t start);
Tensor ConcatOf(const std::vector<Tensor>& parts, const TensorMeta& out_meta, int axis);
// Fails (naming the source tensor) where a finite value rounds to +-inf and the expression does not allow it.
Result<Tensor> ElementwiseOf(const Expr& cast_or_add_constant, const Tensor& in, const TensorMeta& out_meta);

// Peak bytes an evaluation may hold at once (inputs materialized + output), for the writer's budget.
uint64_t EstimateEvalBytes(const Expr& e);

// Hands the source pages an evaluated expression read back to the kernel, so resident memory follows what
// is in flight rather than how much of the sources has been read. Safe with concurrent readers (they
// re-fault from the page cache).
void ReleaseSources(const Expr& e);

}  // namespace forge::plan
