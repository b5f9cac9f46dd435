// One decoder layer's pieces (spec §4.2-4.6), each over a batch of consecutive positions: Gated DeltaNet,
// gated full attention, dense MLP or MoE. Projections run batched (rows read once per call); everything
// that couples positions (conv, recurrence, attention) runs one position at a time in order, so a token's
// result is bit-identical whether it is processed alone or inside a verify pass.
#pragma once

#include <cstdint>
#include <vector>

#include "verify/model/kernels.h"
#include "verify/model/weights.h"

namespace forge::verify::model {

// n vectors of `width` floats, contiguous.
struct Rows {
  Rows() = default;
  Rows(int64_t n_, int64_t width_) : n(n_), width(width_), data(static_cast<size_t>(n_ * width_), 0.0f) {}
  int64_t n = 0, width = 0;
  std::vector<float> data;
  float* at(int64_t t) { return data.data() + t * width; }
  const float* at(int64_t t) const { return data.data() + t * width; }
  std::vector<float*> ptrs();
  std::vector<const float*> cptrs() const;
};

// Recurrent state of one GDN layer: the last K-1 pre-conv inputs (oldest first) and S per value head in
// transformers' layout [Hv, Dk, Dv], f32.
struct GdnState {
  std::vector<float> conv, ssm;
  bool operator==(const GdnState&) const = default;
};
GdnState EmptyGdnState(const Geometry& g);

// Post-norm, post-RoPE keys and values of one attention layer, one row of kv_heads*head_dim per position.
struct KvCache {
  int64_t width = 0;
  std::vector<float> k, v;
  int64_t size() const { return width ? static_cast<int64_t>(k.size()) / width : 0; }
  void Truncate(int64_t positions);
};

struct LayerContext {
  const Geometry& geo;
  const MatMul& mm;
};

// ys[t] = GDN(xs[t]) in order; when `after_each` is given, it is resized to n - 1 entries and entry t gets
// the state after position t (after the last, the state is `state` itself). Entries are overwritten in
// place, each head's slice by the thread that just updated it, so a caller that keeps the vector between
// passes pays for no allocation, no page fault and no second pass over 2-16 MB per layer and position.
void GatedDeltaNet(const LayerContext& c, const GdnWeights& w, const Rows& xs, GdnState& state,
                   std::vector<GdnState>* after_each, Rows& ys);

// ys[t] = attention of position start + t over the cache (which gains n entries); cache.size() must be start.
void GatedAttention(const LayerContext& c, const AttentionWeights& w, const Rows& xs, int64_t start,
                    KvCache& cache, Rows& ys);

// Dense MLP or MoE (softmax top-k renormalized + sigmoid-gated shared expert).
void FeedForward(const LayerContext& c, const LayerWeights& w, const Rows& xs, Rows& ys);

// Partial rotate-half RoPE (spec §4.4) on the first `rope_dims` of one head vector at `position`.
void ApplyRope(float* head, int64_t rope_dims, double theta, int64_t position);

}  // namespace forge::verify::model
