// The RMSNorm "+1" delta (spec §3.2; pitfalls 3-6, 21): raw HF Qwen3.5 norms compute x̂·(1+w), MLX stores
// w+1. Only the zero-centered norms move: input/post-attention layernorms, q/k norms, the final norm, and
// the MTP's pre_fc_norm_hidden / pre_fc_norm_embedding / norm and its layer norms. Never the GDN gated
// norm (linear_attn.norm), vision norms, biases, A_log, dt_bias or conv weights.
//
// y = round_once(out_dtype, f32(w) + delta). The backbone, the MTP layer norms (mtp.layers.N.*) and the MTP
// head norms (mtp.norm, pre_fc_norm_*) each get their own delta, so a mixed checkpoint (e.g. backbone and
// MTP head +1, MTP layer norms raw) can be brought to one convention. Deciding the deltas is the caller's job
// (inspect/norm_evidence.h): this pass never guesses from magnitudes.
#pragma once

#include <optional>

#include "forge/plan/expr.h"

namespace forge::graft {

struct NormDeltas {
  double backbone = 0;  // +1 raw -> MLX, -1 MLX -> raw, 0 unchanged
  double mtp_layers = 0;
  double mtp_head = 0;
};

// `out_dtype`: the dtype the shifted norms are rounded to (nullopt: their own dtype).
Result<plan::Plan> ShiftNorms(const plan::Plan& in, NormDeltas deltas, std::optional<DType> out_dtype);

}  // namespace forge::graft
