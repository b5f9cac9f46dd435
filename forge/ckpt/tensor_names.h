// Tensor names of Qwen3.5/3.6 checkpoints in their three namings (spec §2, §3.1):
//   HF VLM  model.language_model.X · model.visual.X · lm_head.X · mtp.X
//   HF text model.X · lm_head.X · mtp.X
//   MLX     language_model.model.X · language_model.lm_head.X · language_model.mtp.X · vision_tower.X
// SplitTensorName() strips the prefix and says which part of the model a tensor belongs to; ClassifyRole()
// says what a tensor is from its part-relative name. This is the one place that knows the naming.
#pragma once

#include <string>
#include <string_view>

namespace forge {

enum class ModelPart { kLanguageModel, kLmHead, kMtp, kVision, kOther };
enum class NamingStyle { kHfVlm, kHfText, kMlx, kNeutral, kUnknown };  // kNeutral: lm_head.* / mtp.*

struct SplitName {
  ModelPart part = ModelPart::kOther;
  NamingStyle style = NamingStyle::kUnknown;
  std::string rel;  // name below the part's prefix, e.g. "layers.3.self_attn.q_proj.weight"
};

SplitName SplitTensorName(const std::string& name);
std::string_view ModelPartName(ModelPart p);

enum class TensorRole {
  kEmbed, kLmHead, kFinalNorm, kLayerNorm, kQkNorm, kGatedNorm, kConv1d, kALog, kDtBias, kLinear,
  kRouter, kSharedExpertGate, kExpertFused, kExpertPerExpert, kExpertSwitch, kMtpFc, kMtpPreFcNorm,
  kMtpFinalNorm, kQuantScales, kQuantBiases, kVision, kUnknown,
};

TensorRole ClassifyRole(const SplitName& n);
std::string_view TensorRoleName(TensorRole r);

// Zero-centered RMSNorms that the HF->MLX conversion shifts by +1 (never the GDN gated norm, spec §3.2).
bool IsZeroCenteredNorm(TensorRole r);

// "<base>.experts.<e>.<proj>_proj.weight" with proj gate/up/down -> base ("...mlp"), e, proj.
bool ParsePerExpertName(const std::string& name, std::string* base, int* expert, std::string* proj);

// "layers.12.mlp.gate.weight" -> 12; -1 when the name has no layer index or one above kMaxLayerIndex.
inline constexpr int kMaxLayerIndex = 1 << 20;
int LayerIndex(const std::string& rel);

bool EndsWith(std::string_view s, std::string_view suffix);
bool StartsWith(std::string_view s, std::string_view prefix);

}  // namespace forge
