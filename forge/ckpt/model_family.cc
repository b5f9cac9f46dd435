#include "forge/ckpt/model_family.h"

#include <cctype>

#include "forge/ckpt/tensor_names.h"

namespace forge {

bool NamesQwen35Family(const std::string& name) {
  std::string s;
  for (char c : name) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return StartsWith(s, "qwen3_5") || StartsWith(s, "qwen3_6");
}

QwenClaim ClaimsQwen35(const Checkpoint& ckpt) {
  QwenClaim c;
  if (const auto& cfg = ckpt.config()) {
    for (const std::string* n : {&cfg->model_type, &cfg->text_model_type, &cfg->architecture}) {
      if (!c.by_config && NamesQwen35Family(*n)) {
        c.by_config = true;
        c.evidence = "config.json names '" + *n + "'";
      }
    }
  }
  // Roles only this family's layout has among the namings forge knows: the Gated DeltaNet parameters of a
  // linear-attention layer and the MTP head's fc. A Llama-style "model.layers.N.self_attn" set is not one.
  for (const auto& [name, ref] : ckpt.tensors()) {
    const SplitName sn = SplitTensorName(name);
    if (sn.part != ModelPart::kLanguageModel && sn.part != ModelPart::kMtp) continue;
    const TensorRole role = ClassifyRole(sn);
    const bool gdn =
        (role == TensorRole::kALog || role == TensorRole::kDtBias || role == TensorRole::kConv1d) &&
        sn.rel.find(".linear_attn.") != std::string::npos;
    if (gdn || role == TensorRole::kMtpFc) {
      c.by_tensors = true;
      c.tensor = name;
      if (c.evidence.empty()) c.evidence = "tensor '" + name + "'";
      break;
    }
  }
  return c;
}

}  // namespace forge
