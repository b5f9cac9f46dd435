// The reference decoder's view of a checkpoint: every weight of the text model and the MTP head, resolved
// from any naming forge reads (HF VLM, HF text, MLX, MTPLX sidecar), any expert layout (HF fused, per
// expert, MLX switch_mlp) and float or MLX-quantized storage, shape-checked against config.json.
//
// Matrices stay in the mapping (see matrix.h). Vectors (norm gains, A_log, dt_bias, conv taps) are small
// and loaded as f32. Norm gains are stored as the multiplier the norm applies: 1 + w for zero-centered
// (HF) weights, w for shifted (MLX) ones, each group by its detected convention (inspect/norm_evidence.h).
//
// Deliberately independent of graft/ and quantize's passes: it is what checks their output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "forge/base/status.h"
#include "forge/ckpt/checkpoint.h"
#include "verify/model/matrix.h"

namespace forge::verify::model {

struct Geometry {
  int64_t hidden = 0, vocab = 0, layers = 0;
  int64_t heads = 0, kv_heads = 0, head_dim = 0, rope_dims = 0;
  double rope_theta = 0, eps = 0;
  int64_t k_heads = 0, v_heads = 0, k_dim = 0, v_dim = 0, conv_kernel = 0;
  int64_t experts = 0, experts_per_tok = 0;
  int64_t conv_channels() const { return 2 * k_heads * k_dim + v_heads * v_dim; }
};

struct MlpWeights {
  Matrix gate, up, down;
};

struct MoeWeights {
  Matrix router;                    // [E, H]
  std::vector<MlpWeights> experts;  // E views
  MlpWeights shared;
  Matrix shared_gate;  // [1, H]
};

struct GdnWeights {
  Matrix qkv, z, b, a, out;
  std::vector<float> conv;  // [C * K], tap j of channel c at c*K + j (oldest first)
  std::vector<float> a_log, dt_bias, norm;
};

struct AttentionWeights {
  Matrix q, k, v, o;
  std::vector<float> q_norm, k_norm;  // gains (multipliers)
};

struct LayerWeights {
  bool full_attention = false;
  std::vector<float> input_norm, post_norm;  // gains
  GdnWeights gdn;
  AttentionWeights attn;
  bool moe = false;
  MlpWeights mlp;
  MoeWeights moe_w;
};

struct MtpWeights {
  Matrix fc;  // [H, 2H], input = concat(normed embedding, normed hidden)
  std::vector<float> pre_fc_norm_embedding, pre_fc_norm_hidden, norm;  // gains
  std::vector<LayerWeights> layers;
};

struct ModelWeights {
  Geometry geo;
  Matrix embed, lm_head;  // lm_head == embed when tied
  std::vector<float> final_norm;
  std::vector<LayerWeights> layers;
  bool has_mtp = false;
  MtpWeights mtp;
  std::string format;              // "hf" or "mlx"
  std::vector<std::string> notes;  // norm conventions used, quantization seen
  bool quantized = false;
  int64_t eos_token = -1;  // config / generation_config, -1 when unknown
};

// Errors: kStructural (4) for missing tensors, shapes that contradict config.json, a mixed norm group;
// kInvalidInput (1) for unreadable data. The checkpoint must outlive the weights.
Result<ModelWeights> LoadModelWeights(const Checkpoint& ckpt);

}  // namespace forge::verify::model
