#include "quantize/policy.h"

#include <algorithm>

#include <fnmatch.h>

#include <fmt/format.h>

#include "forge/ckpt/tensor_names.h"

namespace forge::quant {
namespace {

const QuantParams kRouterParams{QuantMode::kAffine, 8, 64};

bool Matches(const std::string& glob, const std::string& path) { return ::fnmatch(glob.c_str(), path.c_str(), 0) == 0; }

}  // namespace

std::string ParamsString(const QuantParams& p) { return fmt::format("{}:{}:{}", QuantModeName(p.mode), p.bits, p.group_size); }

Result<std::optional<QuantParams>> ParseRuleSpec(const std::string& spec) {
  if (spec == "keep" || spec == "float") return std::optional<QuantParams>();
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= spec.size(); ++i) {
    if (i == spec.size() || spec[i] == ':') {
      parts.push_back(spec.substr(start, i - start));
      start = i + 1;
    }
  }
  auto mode = ParseQuantMode(parts[0]);
  if (!mode || parts.size() > 3) {
    return Status::Error(ExitCode::kUsage, fmt::format("invalid quantization '{}' (MODE[:BITS[:GROUP]] or keep)", spec));
  }
  QuantParams p = DefaultParams(*mode);
  try {
    if (parts.size() > 1) p.bits = std::stoi(parts[1]);
    if (parts.size() > 2) p.group_size = std::stoi(parts[2]);
  } catch (const std::exception&) {
    return Status::Error(ExitCode::kUsage, fmt::format("invalid quantization '{}' (MODE[:BITS[:GROUP]] or keep)", spec));
  }
  FORGE_RETURN_IF_ERROR(ValidateParams(p));
  return std::optional<QuantParams>(p);
}

Status ParseMtpPolicy(const std::string& text, QuantPolicy* policy) {
  if (text == "skip-fc") policy->mtp = MtpPolicy::kSkipFc;
  else if (text == "keep") policy->mtp = MtpPolicy::kKeep;
  else if (text == "match") policy->mtp = MtpPolicy::kMatch;
  else {
    FORGE_ASSIGN_OR_RETURN(auto params, ParseRuleSpec(text));
    if (!params) return Status::Error(ExitCode::kUsage, "--mtp-policy: skip-fc, keep, match or MODE:BITS:GROUP");
    policy->mtp = MtpPolicy::kExplicit;
    policy->mtp_params = *params;
  }
  return Status();
}

Decision Decide(const std::string& name, const std::vector<uint64_t>& shape, DType dtype, const QuantPolicy& policy) {
  Decision d;
  if (!EndsWith(name, ".weight")) {
    d.reason = "not a .weight";
    return d;
  }
  if (!IsFloat(dtype) || dtype == DType::kF64) {
    d.reason = "not a float16/bfloat16/float32 tensor";
    return d;
  }
  if (shape.size() < 2) {
    d.reason = "1-D";
    return d;
  }
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {  // [64, 0]: no groups to quantize
    d.reason = "empty (a zero dimension)";
    return d;
  }
  const std::string module = name.substr(0, name.size() - 7);
  const SplitName sn = SplitTensorName(name);
  const TensorRole role = ClassifyRole(sn);
  d.quantize = true;
  d.params = policy.top;
  d.reason = "default";
  if (policy.qwen_model) {
    if (IsZeroCenteredNorm(role) || role == TensorRole::kGatedNorm || role == TensorRole::kConv1d ||
        role == TensorRole::kALog || role == TensorRole::kDtBias) {
      d = {false, {}, std::string(TensorRoleName(role)) + " is never quantized"};
    } else if (sn.part == ModelPart::kVision) {
      d = {false, {}, "vision tower kept float"};
    } else if (role == TensorRole::kRouter || role == TensorRole::kSharedExpertGate) {
      d = {true, kRouterParams, "router: affine 8-bit group 64 (mlx-lm MoE predicate)"};
    }
    if (sn.part == ModelPart::kMtp && d.quantize) {
      switch (policy.mtp) {
        case MtpPolicy::kSkipFc:
          if (role == TensorRole::kMtpFc) d = {false, {}, "mtp.fc kept float (--mtp-policy skip-fc)"};
          break;
        case MtpPolicy::kKeep: d = {false, {}, "MTP head kept float (--mtp-policy keep)"}; break;
        case MtpPolicy::kMatch: break;
        case MtpPolicy::kExplicit: d = {true, policy.mtp_params, "MTP head (--mtp-policy)"}; break;
      }
    }
  }
  for (const auto& r : policy.rules) {
    if (!Matches(r.glob, module)) continue;
    if (r.params) d = {true, *r.params, "--override " + r.glob};
    else d = {false, {}, "--skip/--override " + r.glob + "=keep"};
  }
  if (d.quantize && shape.back() % static_cast<uint64_t>(d.params.group_size) != 0) {
    d = {false, {}, fmt::format("last dimension {} does not divide by group size {}", shape.back(), d.params.group_size)};
  }
  return d;
}

}  // namespace forge::quant
