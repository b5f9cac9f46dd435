#include "forge/ckpt/expected_tensors.h"

#include <fmt/format.h>

namespace forge {
namespace {

using Shape = std::vector<uint64_t>;
Shape S(std::initializer_list<int64_t> dims) {
  Shape s;
  for (int64_t d : dims) s.push_back(static_cast<uint64_t>(d));
  return s;
}

void AddMlp(const TextGeometry& g, ExpertLayout layout, const std::string& p, ModelPart part,
            std::vector<ExpectedTensor>* out) {
  const int64_t H = g.hidden;
  auto add = [&](const std::string& rel, Shape shape) { out->push_back({part, p + rel, std::move(shape)}); };
  if (!g.is_moe()) {
    add("mlp.gate_proj.weight", S({g.intermediate, H}));
    add("mlp.up_proj.weight", S({g.intermediate, H}));
    add("mlp.down_proj.weight", S({H, g.intermediate}));
    return;
  }
  const int64_t E = g.experts, Ie = g.moe_intermediate, Is = g.shared_intermediate;
  add("mlp.gate.weight", S({E, H}));
  add("mlp.shared_expert.gate_proj.weight", S({Is, H}));
  add("mlp.shared_expert.up_proj.weight", S({Is, H}));
  add("mlp.shared_expert.down_proj.weight", S({H, Is}));
  add("mlp.shared_expert_gate.weight", S({1, H}));
  switch (layout) {
    case ExpertLayout::kPerExpert:
      for (int64_t e = 0; e < E; ++e) {
        add(fmt::format("mlp.experts.{}.gate_proj.weight", e), S({Ie, H}));
        add(fmt::format("mlp.experts.{}.up_proj.weight", e), S({Ie, H}));
        add(fmt::format("mlp.experts.{}.down_proj.weight", e), S({H, Ie}));
      }
      break;
    case ExpertLayout::kSwitchMlp:
      add("mlp.switch_mlp.gate_proj.weight", S({E, Ie, H}));
      add("mlp.switch_mlp.up_proj.weight", S({E, Ie, H}));
      add("mlp.switch_mlp.down_proj.weight", S({E, H, Ie}));
      break;
    default:  // fused is the official layout, and what a block with no expert tensors is checked against
      add("mlp.experts.gate_up_proj", S({E, 2 * Ie, H}));
      add("mlp.experts.down_proj", S({E, H, Ie}));
      break;
  }
}

void AddFullAttention(const TextGeometry& g, const std::string& p, ModelPart part, std::vector<ExpectedTensor>* out) {
  const int64_t H = g.hidden, d = g.head_dim;
  auto add = [&](const std::string& rel, Shape shape) { out->push_back({part, p + rel, std::move(shape)}); };
  add("self_attn.q_proj.weight", S({2 * g.heads * d, H}));  // query and output gate, per head
  add("self_attn.k_proj.weight", S({g.kv_heads * d, H}));
  add("self_attn.v_proj.weight", S({g.kv_heads * d, H}));
  add("self_attn.o_proj.weight", S({H, g.heads * d}));
  add("self_attn.q_norm.weight", S({d}));
  add("self_attn.k_norm.weight", S({d}));
}

void AddLinearAttention(const TextGeometry& g, const std::string& p, std::vector<ExpectedTensor>* out) {
  const int64_t H = g.hidden, vd = g.linear_v_heads * g.linear_v_dim, C = g.conv_channels();
  auto add = [&](const std::string& rel, Shape shape) {
    out->push_back({ModelPart::kLanguageModel, p + rel, std::move(shape)});
  };
  add("linear_attn.in_proj_qkv.weight", S({C, H}));
  add("linear_attn.in_proj_z.weight", S({vd, H}));
  add("linear_attn.in_proj_b.weight", S({g.linear_v_heads, H}));
  add("linear_attn.in_proj_a.weight", S({g.linear_v_heads, H}));
  add("linear_attn.conv1d.weight", S({C, 1, g.conv_kernel}));
  add("linear_attn.dt_bias", S({g.linear_v_heads}));
  add("linear_attn.A_log", S({g.linear_v_heads}));
  add("linear_attn.norm.weight", S({g.linear_v_dim}));
  add("linear_attn.out_proj.weight", S({H, vd}));
}

}  // namespace

std::string_view ExpertLayoutName(ExpertLayout l) {
  switch (l) {
    case ExpertLayout::kNone: return "none";
    case ExpertLayout::kDense: return "dense";
    case ExpertLayout::kPerExpert: return "per_expert";
    case ExpertLayout::kFused: return "fused";
    case ExpertLayout::kSwitchMlp: return "switch_mlp";
    case ExpertLayout::kMixed: return "mixed";
  }
  return "none";
}

std::vector<ExpectedTensor> ExpectedTrunk(const TextGeometry& g, ExpertLayout layout) {
  std::vector<ExpectedTensor> out;
  const auto LM = ModelPart::kLanguageModel;
  out.push_back({LM, "embed_tokens.weight", S({g.vocab, g.hidden})});
  for (int64_t i = 0; i < g.layers; ++i) {
    std::string p = fmt::format("layers.{}.", i);
    out.push_back({LM, p + "input_layernorm.weight", S({g.hidden})});
    out.push_back({LM, p + "post_attention_layernorm.weight", S({g.hidden})});
    bool full = static_cast<size_t>(i) < g.layer_types.size() && g.layer_types[i] == "full_attention";
    if (full) AddFullAttention(g, p, LM, &out);
    else AddLinearAttention(g, p, &out);
    AddMlp(g, layout, p, LM, &out);
  }
  out.push_back({LM, "norm.weight", S({g.hidden})});
  if (!g.tie_word_embeddings) out.push_back({ModelPart::kLmHead, "weight", S({g.vocab, g.hidden})});
  return out;
}

std::vector<ExpectedTensor> ExpectedMtp(const TextGeometry& g, ExpertLayout layout, int64_t mtp_layers) {
  std::vector<ExpectedTensor> out;
  const auto M = ModelPart::kMtp;
  out.push_back({M, "fc.weight", S({g.hidden, 2 * g.hidden})});
  out.push_back({M, "pre_fc_norm_embedding.weight", S({g.hidden})});
  out.push_back({M, "pre_fc_norm_hidden.weight", S({g.hidden})});
  out.push_back({M, "norm.weight", S({g.hidden})});
  for (int64_t i = 0; i < mtp_layers; ++i) {
    std::string p = fmt::format("layers.{}.", i);
    out.push_back({M, p + "input_layernorm.weight", S({g.hidden})});
    out.push_back({M, p + "post_attention_layernorm.weight", S({g.hidden})});
    AddFullAttention(g, p, M, &out);
    AddMlp(g, layout, p, M, &out);
  }
  return out;
}

}  // namespace forge
