// The reference decoder: the Qwen3.5/3.6 text model (spec §4.1-4.6) and its MTP head (§4.7), f32 on the
// CPU, reading weights through the checkpoint reader (weights.h). Both run over a batch of consecutive
// positions with per-position arithmetic (layers.h), so plain decoding and a verify pass agree bit for bit.
//
// Caches (§4.8): GDN conv + SSM state per linear layer (snapshots per position, restored on rejection),
// K/V per attention layer (truncated on rejection), the MTP head's own K/V keyed by slot position.
#pragma once

#include <cstdint>
#include <vector>

#include "verify/model/layers.h"

namespace forge::verify::model {

struct DecoderState {
  int64_t position = 0;       // positions processed so far
  std::vector<GdnState> gdn;  // per layer; empty for attention layers
  std::vector<KvCache> kv;    // per layer; empty for GDN layers
};

// GDN states after each position but the last of one Forward call: [layer][position] (attention layers:
// empty). Keep one between passes: Forward overwrites it in place and Restore swaps it into the state, so
// neither allocates.
using GdnSnapshots = std::vector<std::vector<GdnState>>;

enum class LogitsFor { kAll, kLast, kNone };

struct ForwardOutput {
  Rows pre_norm;   // residual stream before the final norm, [n, H]
  Rows post_norm;  // after the final norm (what the LM head scores), [n, H]
  Rows logits;     // [n, V] (kAll), [1, V] (kLast) or empty
};

class Decoder {
 public:
  Decoder(const ModelWeights& w, ThreadPool* pool) : w_(w), mm_(pool) {}
  const ModelWeights& weights() const { return w_; }
  DecoderState NewState() const;

  // Runs `tokens` at positions st.position.. and advances it.
  void Forward(const std::vector<int64_t>& tokens, DecoderState& st, LogitsFor which, ForwardOutput& out,
               GdnSnapshots* snapshots = nullptr) const;
  // Rolls back to the state after position index `t` of the Forward call that produced `snapshots`, which
  // started at `start`: GDN states restored, K/V truncated, position = start + t + 1. `t` is below the last
  // position (after it, the state is already there: nothing to roll back). The restored snapshots are
  // swapped with the discarded states: `snapshots` is spent (reusable as storage for the next Forward).
  void Restore(DecoderState& st, GdnSnapshots& snapshots, int64_t start, int64_t t) const;

  void Embed(int64_t token, float* out) const { w_.embed.Row(token, out); }
  void LmHead(const std::vector<const float*>& xs, const std::vector<float*>& ys) const {
    mm_.Run(w_.lm_head, xs, ys);
  }

 private:
  const ModelWeights& w_;
  MatMul mm_;
};

struct MtpState {
  std::vector<KvCache> kv;  // one per MTP layer
  int64_t size() const { return kv.empty() ? 0 : kv[0].size(); }
};

struct MtpOutput {
  Rows hidden;  // after mtp.norm (the hidden chained into the next draft step), [n, H]
  Rows logits;  // [n, V]
};

class MtpHead {
 public:
  MtpHead(const ModelWeights& w, ThreadPool* pool) : w_(w), mm_(pool), decoder_(w, pool) {}
  MtpState NewState() const;
  // MTP slots (hiddens[t], tokens[t]) at positions start..start+n-1: the cache is first cut to `start`
  // entries (dropping speculative ones), then gains n. With several MTP layers, all run in sequence per
  // step (AirRunner/mlx-vlm; identical to vLLM's choice for the released one-layer heads).
  void Forward(const Rows& hiddens, const std::vector<int64_t>& tokens, int64_t start, MtpState& st,
               MtpOutput& out) const;

 private:
  const ModelWeights& w_;
  MatMul mm_;
  Decoder decoder_;
};

}  // namespace forge::verify::model
