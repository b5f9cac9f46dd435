// Which tensors get quantized, and how (defaults as mlx-lm for Qwen3.5/3.6, spec §6.4):
//   never: norms, conv1d, A_log, dt_bias, 1-D tensors, non-float tensors, names not ending in ".weight", and
//          tensors whose last dimension does not divide by the group size;
//   vision tower: kept float (community convention; mlx-vlm keeps it);
//   routers (mlp.gate) and shared_expert_gate: affine 8-bit, group 64 (mlx-lm's MoE predicate);
//   MTP head: --mtp-policy skip-fc (default: mtp.fc float, the rest like the trunk), keep (whole head
//          float), match (like the trunk), or MODE:BITS:GROUP (the head's matrices at those parameters);
//   then user rules in command-line order, the last matching one winning: --skip GLOB (keep float) and
//   --override GLOB=MODE:BITS:GROUP | GLOB=keep. Globs (fnmatch) match MLX module paths (name minus
//   ".weight").
// Pure tensor-level mode (no Qwen config): every 2-D+ float ".weight" whose last dim divides, plus rules.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "forge/base/dtype.h"
#include "quantize/codec.h"

namespace forge::quant {

struct UserRule {
  std::string glob;
  std::optional<QuantParams> params;  // nullopt: keep float
};

enum class MtpPolicy { kSkipFc, kKeep, kMatch, kExplicit };

struct QuantPolicy {
  QuantParams top;
  MtpPolicy mtp = MtpPolicy::kSkipFc;
  QuantParams mtp_params;       // kExplicit
  bool qwen_model = true;       // false: pure tensor-level mode
  std::vector<UserRule> rules;  // in command-line order
};

struct Decision {
  bool quantize = false;
  QuantParams params;
  std::string reason;  // why (for --dry-run and the report)
};

// `module` is the MLX module path (tensor name without ".weight"); `shape` and `dtype` the float tensor's.
Decision Decide(const std::string& tensor_name, const std::vector<uint64_t>& shape, DType dtype, const QuantPolicy& policy);

// --mtp-policy: "skip-fc", "keep", "match" or MODE:BITS:GROUP -> policy->mtp (and mtp_params).
Status ParseMtpPolicy(const std::string& text, QuantPolicy* policy);

// "affine:4:64" / "mxfp4" (defaults filled in) / "keep" -> rule parameters.
Result<std::optional<QuantParams>> ParseRuleSpec(const std::string& spec);
std::string ParamsString(const QuantParams& p);

}  // namespace forge::quant
