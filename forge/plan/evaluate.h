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

// Moves axis `from` of `in` to position `to` (out_meta: the result's), for Evaluate and EvaluateRange.
Tensor MoveAxisOf(const Tensor& in, const TensorMeta& out_meta, int from, int to);

// Peak bytes an evaluation may hold at once (inputs materialized + output), for the writer's budget.
uint64_t EstimateEvalBytes(const Expr& e);

// Hands the source pages an evaluated expression read back to the kernel, so resident memory follows what
// is in flight rather than how much of the sources has been read. Safe with concurrent readers (they
// re-fault from the page cache).
void ReleaseSources(const Expr& e);

}  // namespace forge::plan
