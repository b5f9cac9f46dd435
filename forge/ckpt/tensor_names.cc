#include "forge/ckpt/tensor_names.h"

#include <array>
#include <cstdlib>

namespace forge {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

SplitName SplitTensorName(const std::string& name) {
  struct Rule {
    std::string_view prefix;
    ModelPart part;
    NamingStyle style;
  };
  // Longest prefixes first: "model.language_model." before "model.".
  static constexpr std::array<Rule, 9> kRules = {{
      {"model.language_model.", ModelPart::kLanguageModel, NamingStyle::kHfVlm},
      {"model.visual.", ModelPart::kVision, NamingStyle::kHfVlm},
      {"language_model.model.", ModelPart::kLanguageModel, NamingStyle::kMlx},
      {"language_model.lm_head.", ModelPart::kLmHead, NamingStyle::kMlx},
      {"language_model.mtp.", ModelPart::kMtp, NamingStyle::kMlx},
      {"vision_tower.", ModelPart::kVision, NamingStyle::kMlx},
      {"lm_head.", ModelPart::kLmHead, NamingStyle::kNeutral},
      {"mtp.", ModelPart::kMtp, NamingStyle::kNeutral},
      {"model.", ModelPart::kLanguageModel, NamingStyle::kHfText},
  }};
  for (const auto& r : kRules) {
    if (StartsWith(name, r.prefix)) return {r.part, r.style, name.substr(r.prefix.size())};
  }
  return {ModelPart::kOther, NamingStyle::kUnknown, name};
}

std::string_view ModelPartName(ModelPart p) {
  switch (p) {
    case ModelPart::kLanguageModel: return "language_model";
    case ModelPart::kLmHead: return "lm_head";
    case ModelPart::kMtp: return "mtp";
    case ModelPart::kVision: return "vision";
    case ModelPart::kOther: return "other";
  }
  return "other";
}

bool ParsePerExpertName(const std::string& name, std::string* base, int* expert, std::string* proj) {
  static constexpr std::string_view kMarker = ".mlp.experts.";
  const size_t at = name.rfind(kMarker);
  if (at == std::string::npos) return false;
  size_t i = at + kMarker.size(), digits = 0;
  int e = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && digits < 9) e = e * 10 + (name[i++] - '0'), ++digits;
  if (digits == 0 || i >= name.size() || name[i] != '.') return false;
  const std::string_view rest = std::string_view(name).substr(i + 1);
  for (std::string_view p : {"gate", "up", "down"}) {
    if (rest.size() == p.size() + 12 && StartsWith(rest, p) && rest.substr(p.size()) == "_proj.weight") {
      if (base) *base = name.substr(0, at + 4);  // "...mlp"
      if (expert) *expert = e;
      if (proj) *proj = std::string(p);
      return true;
    }
  }
  return false;
}

int LayerIndex(const std::string& rel) {
  if (!StartsWith(rel, "layers.")) return -1;
  // Digits read with a bound: an index past kMaxLayerIndex (say 2^32) is no layer, never folded into a
  // small one by a narrowing cast.
  int64_t v = 0;
  size_t i = 7, digits = 0;
  for (; i < rel.size() && rel[i] >= '0' && rel[i] <= '9'; ++i, ++digits) {
    v = v * 10 + (rel[i] - '0');
    if (v > kMaxLayerIndex) return -1;
  }
  if (digits == 0 || i >= rel.size() || rel[i] != '.') return -1;
  return static_cast<int>(v);
}

TensorRole ClassifyRole(const SplitName& n) {
  const std::string& r = n.rel;
  if (n.part == ModelPart::kVision) return TensorRole::kVision;
  if (n.part == ModelPart::kOther) return TensorRole::kUnknown;
  if (n.part == ModelPart::kLmHead) return EndsWith(r, ".scales") ? TensorRole::kQuantScales
                                          : EndsWith(r, ".biases") ? TensorRole::kQuantBiases
                                                                   : TensorRole::kLmHead;
  if (EndsWith(r, ".scales")) return TensorRole::kQuantScales;
  // Affine biases (".biases") never collide with a real parameter: Qwen3.5 linears have no bias.
  if (EndsWith(r, ".biases")) return TensorRole::kQuantBiases;
  if (n.part == ModelPart::kMtp) {
    if (StartsWith(r, "fc.")) return TensorRole::kMtpFc;
    if (r == "pre_fc_norm_hidden.weight" || r == "pre_fc_norm_embedding.weight") return TensorRole::kMtpPreFcNorm;
    if (r == "norm.weight") return TensorRole::kMtpFinalNorm;
  } else {
    if (StartsWith(r, "embed_tokens.")) return TensorRole::kEmbed;
    if (r == "norm.weight") return TensorRole::kFinalNorm;
  }
  if (EndsWith(r, ".input_layernorm.weight") || EndsWith(r, ".post_attention_layernorm.weight")) {
    return TensorRole::kLayerNorm;
  }
  if (EndsWith(r, ".q_norm.weight") || EndsWith(r, ".k_norm.weight")) return TensorRole::kQkNorm;
  if (EndsWith(r, ".linear_attn.norm.weight")) return TensorRole::kGatedNorm;
  if (EndsWith(r, ".conv1d.weight")) return TensorRole::kConv1d;
  if (EndsWith(r, ".A_log")) return TensorRole::kALog;
  if (EndsWith(r, ".dt_bias")) return TensorRole::kDtBias;
  if (EndsWith(r, ".mlp.gate.weight")) return TensorRole::kRouter;
  if (EndsWith(r, ".mlp.shared_expert_gate.weight")) return TensorRole::kSharedExpertGate;
  if (EndsWith(r, ".mlp.experts.gate_up_proj") || EndsWith(r, ".mlp.experts.down_proj")) {
    return TensorRole::kExpertFused;
  }
  if (r.find(".mlp.switch_mlp.") != std::string::npos) return TensorRole::kExpertSwitch;
  if (ParsePerExpertName(r, nullptr, nullptr, nullptr)) {
    return TensorRole::kExpertPerExpert;
  }
  if (EndsWith(r, "_proj.weight")) return TensorRole::kLinear;
  return TensorRole::kUnknown;
}

std::string_view TensorRoleName(TensorRole r) {
  static constexpr std::array<std::string_view, 22> kNames = {
      "embed", "lm_head", "final_norm", "layer_norm", "qk_norm", "gated_norm", "conv1d", "A_log", "dt_bias",
      "linear", "router", "shared_expert_gate", "expert_fused", "expert_per_expert", "expert_switch_mlp",
      "mtp_fc", "mtp_pre_fc_norm", "mtp_final_norm", "quant_scales", "quant_biases", "vision", "unknown"};
  return kNames[static_cast<int>(r)];
}

bool IsZeroCenteredNorm(TensorRole r) {
  return r == TensorRole::kFinalNorm || r == TensorRole::kLayerNorm || r == TensorRole::kQkNorm ||
         r == TensorRole::kMtpPreFcNorm || r == TensorRole::kMtpFinalNorm;
}

}  // namespace forge
