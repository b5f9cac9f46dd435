#include "inspect/norm_evidence.h"

#include <cctype>

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "forge/base/float_access.h"
#include "forge/ckpt/tensor_names.h"

namespace forge::inspect {
// Mean of a small float tensor, or NaN for non-float dtypes.
double MeanOf(const TensorRef& ref) {
  const uint64_t n = ref.info->numel();
  if (n == 0) return NAN;
  if (!IsFloat(ref.info->dtype)) return NAN;
  const uint8_t* p = ref.file->Data(*ref.info);
  double sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum += LoadAsF32(ref.info->dtype, p, i);
  return sum / static_cast<double>(n);
}

namespace {

// "layers.7.self_attn.q_norm.weight" -> "q_norm"
std::string NormFamily(const std::string& rel) {
  for (const char* f : {"input_layernorm", "post_attention_layernorm", "q_norm", "k_norm"}) {
    if (rel.find(std::string(".") + f + ".weight") != std::string::npos) return f;
  }
  return {};
}

}  // namespace

std::string_view NormConventionName(NormConvention c) {
  switch (c) {
    case NormConvention::kZeroCentered: return "zero_centered";
    case NormConvention::kShifted: return "shifted";
    case NormConvention::kMixed: return "mixed";
    case NormConvention::kUnknown: return "unknown";
  }
  return "unknown";
}

namespace {

bool Known(NormConvention c) { return c == NormConvention::kZeroCentered || c == NormConvention::kShifted; }

// Which convention `m` sits closer to, given the backbone's mean for the same family.
bool CloserToRaw(double m, double backbone_mean, NormConvention backbone) {
  double raw_center = backbone == NormConvention::kShifted ? backbone_mean - 1.0 : backbone_mean;
  return std::fabs(m - raw_center) < std::fabs(m - (raw_center + 1.0));
}

}  // namespace

std::string DescribeNormGroups(const NormEvidence& ev) {
  std::string out = fmt::format("backbone {} (conv1d layout)", NormConventionName(ev.trunk));
  if (!ev.mtp_layer_norm_tensors.empty()) {
    out += fmt::format("; MTP layer norms {} ({})", NormConventionName(ev.mtp_layers), fmt::join(ev.mtp_layer_norm_tensors, ", "));
  }
  if (!ev.mtp_head_norm_tensors.empty()) {
    out += fmt::format("; MTP head norms {} ({})", NormConventionName(ev.mtp_head), fmt::join(ev.mtp_head_norm_tensors, ", "));
  }
  return out;
}

// The config key that declares MTPLX's delta encoding ("" when none does): the four places MTPLX's
// _mtp_norms_are_delta_encoded reads, with its three values.
std::string DeclaredDeltaKey(const Checkpoint& ckpt) {
  if (!ckpt.config()) return "";
  const nlohmann::json& c = ckpt.config()->raw;
  auto delta = [](const nlohmann::json& v) {
    if (!v.is_string()) return false;
    std::string s = v.get<std::string>();
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s == "delta" || s == "delta_plus_one" || s == "mlx_delta";
  };
  for (const char* k : {"mtplx_mtp_norm_encoding", "mtp_norm_encoding"}) {
    if (c.contains(k) && delta(c[k])) return k;
  }
  if (auto q = c.find("mtplx_mtp_quantization"); q != c.end() && q->is_object()) {
    for (const char* k : {"norm_encoding", "norm_weight_encoding"}) {
      if (q->contains(k) && delta((*q)[k])) return std::string("mtplx_mtp_quantization.") + k;
    }
  }
  return "";
}

NormEvidence DetectNormConvention(const Checkpoint& ckpt, const std::string& format) {
  NormEvidence ev;
  int raw = 0, converted = 0;
  std::string first_raw, first_converted;
  std::map<std::string, std::pair<double, int>> trunk_family;  // family -> (sum of means, count)
  std::map<std::string, std::string> mtp_family_tensor;
  double backbone_final = NAN;
  std::string mtp_final;
  for (const auto& [name, ref] : ckpt.tensors()) {
    SplitName sn = SplitTensorName(name);
    TensorRole role = ClassifyRole(sn);
    if (role == TensorRole::kConv1d && sn.part == ModelPart::kLanguageModel && ref.info->shape.size() == 3) {
      const auto& s = ref.info->shape;
      if (s[1] == 1 && s[2] != 1) { ++raw; if (first_raw.empty()) first_raw = name; }
      else if (s[2] == 1 && s[1] != 1) { ++converted; if (first_converted.empty()) first_converted = name; }
    }
    if (!IsZeroCenteredNorm(role)) continue;
    if (sn.part == ModelPart::kMtp) {
      (LayerIndex(sn.rel) >= 0 ? ev.mtp_layer_norm_tensors : ev.mtp_head_norm_tensors).push_back(name);
      if (role == TensorRole::kMtpFinalNorm) mtp_final = name;
    }
    if (sn.part == ModelPart::kLanguageModel && role == TensorRole::kFinalNorm) backbone_final = MeanOf(ref);
    std::string fam = NormFamily(sn.rel);
    if (fam.empty()) continue;
    if (sn.part == ModelPart::kLanguageModel) {
      double m = MeanOf(ref);
      if (!std::isnan(m)) { trunk_family[fam].first += m; trunk_family[fam].second += 1; }
    } else if (sn.part == ModelPart::kMtp && LayerIndex(sn.rel) == 0) {
      mtp_family_tensor[fam] = name;
    }
  }
  if (raw > 0 && converted == 0) {
    ev.trunk = NormConvention::kZeroCentered;
    ev.evidence.push_back(fmt::format("{} conv1d weights in raw HF layout [C,1,K] (e.g. {}) => backbone norms zero_centered", raw, first_raw));
  } else if (converted > 0 && raw == 0) {
    ev.trunk = NormConvention::kShifted;
    ev.evidence.push_back(fmt::format("{} conv1d weights in MLX layout [C,K,1] (e.g. {}) => backbone norms shifted (+1)", converted, first_converted));
  } else if (raw > 0 && converted > 0) {
    ev.trunk = NormConvention::kMixed;
    ev.evidence.push_back(fmt::format("conv1d layouts disagree: {} raw [C,1,K] (e.g. {}), {} converted [C,K,1] (e.g. {})", raw, first_raw, converted, first_converted));
  } else if (format == "mlx" || format == "hf") {
    ev.trunk = format == "mlx" ? NormConvention::kShifted : NormConvention::kZeroCentered;
    ev.evidence.push_back(fmt::format("no conv1d weight; {} naming => backbone norms {}", format, NormConventionName(ev.trunk)));
  } else {
    ev.evidence.push_back("no conv1d weight and no recognizable naming: convention unknown");
  }
  if (!ev.has_mtp_norms()) {
    ev.overall = ev.trunk;
    return ev;
  }
  if (!Known(ev.trunk)) {
    ev.evidence.push_back("backbone convention unknown: the MTP norms cannot be judged against it");
    ev.overall = ev.trunk;
    return ev;
  }

  // A declared encoding is evidence about the whole head: MTPLX adds exactly 1 to every head norm when the
  // config says "delta" (docs/LAYOUTS.md), so that is what the tensors are.
  if (std::string key = DeclaredDeltaKey(ckpt); !key.empty()) {
    ev.mtp_layers = ev.mtp_head = ev.mtp = NormConvention::kZeroCentered;
    ev.mtp_declared = true;
    ev.evidence.push_back(fmt::format("config.json {} declares the MTP head's norms zero_centered (MTPLX delta)", key));
    ev.overall = ev.mtp == ev.trunk ? ev.trunk : NormConvention::kMixed;
    return ev;
  }

  // MTP layer norms: one vote per family.
  int votes_raw = 0, votes_shifted = 0;
  for (const auto& [fam, name] : mtp_family_tensor) {
    auto tf = trunk_family.find(fam);
    double m = MeanOf(*ckpt.Find(name));
    if (tf == trunk_family.end() || std::isnan(m)) continue;
    double trunk_mean = tf->second.first / tf->second.second;
    bool is_raw = CloserToRaw(m, trunk_mean, ev.trunk);
    (is_raw ? votes_raw : votes_shifted) += 1;
    ev.evidence.push_back(fmt::format("{} mean {:.4f} vs backbone {} mean {:.4f} ({}) => {}", name, m, fam, trunk_mean,
                                      NormConventionName(ev.trunk), is_raw ? "zero_centered" : "shifted"));
  }
  if (votes_raw >= 3 * votes_shifted && votes_raw > 0) ev.mtp_layers = NormConvention::kZeroCentered;
  else if (votes_shifted >= 3 * votes_raw && votes_shifted > 0) ev.mtp_layers = NormConvention::kShifted;
  else if (votes_raw + votes_shifted > 0) {
    ev.mtp_layers = NormConvention::kMixed;
    ev.evidence.push_back(fmt::format("MTP layer norms disagree among themselves ({} zero_centered, {} shifted)", votes_raw, votes_shifted));
  }

  // MTP head norms: mtp.norm against the backbone's final norm; pre_fc norms follow.
  if (!mtp_final.empty() && !std::isnan(backbone_final)) {
    double m = MeanOf(*ckpt.Find(mtp_final));
    bool is_raw = CloserToRaw(m, backbone_final, ev.trunk);
    ev.mtp_head = is_raw ? NormConvention::kZeroCentered : NormConvention::kShifted;
    ev.evidence.push_back(fmt::format("{} mean {:.4f} vs backbone final norm mean {:.4f} ({}) => MTP head norms {}", mtp_final, m,
                                      backbone_final, NormConventionName(ev.trunk), NormConventionName(ev.mtp_head)));
  } else {
    ev.mtp_head = ev.mtp_layers;
  }
  if (ev.mtp_layers == NormConvention::kUnknown) ev.mtp_layers = ev.mtp_head;

  ev.mtp = ev.mtp_layers == ev.mtp_head ? ev.mtp_layers : NormConvention::kMixed;
  ev.overall = ev.mtp == ev.trunk || ev.mtp == NormConvention::kUnknown ? ev.trunk : NormConvention::kMixed;
  return ev;
}

}  // namespace forge::inspect
