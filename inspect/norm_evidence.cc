#include "inspect/norm_evidence.h"

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "forge/base/float_access.h"
#include "forge/ckpt/tensor_names.h"

namespace forge::inspect {
namespace {

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
    case NormConvention::kZeroCentred: return "zero_centred";
    case NormConvention::kShifted: return "shifted";
    case NormConvention::kMixed: return "mixed";
    case NormConvention::kUnknown: return "unknown";
  }
  return "unknown";
}

NormEvidence DetectNormConvention(const Checkpoint& ckpt, const std::string& format) {
  NormEvidence ev;
  int raw = 0, converted = 0;
  std::string first_raw, first_converted;
  std::map<std::string, std::pair<double, int>> trunk_family;  // family -> (sum of means, count)
  std::map<std::string, std::string> mtp_family_tensor;
  for (const auto& [name, ref] : ckpt.tensors()) {
    SplitName sn = SplitTensorName(name);
    TensorRole role = ClassifyRole(sn);
    if (role == TensorRole::kConv1d && sn.part == ModelPart::kLanguageModel && ref.info->shape.size() == 3) {
      const auto& s = ref.info->shape;
      if (s[1] == 1 && s[2] != 1) { ++raw; if (first_raw.empty()) first_raw = name; }
      else if (s[2] == 1 && s[1] != 1) { ++converted; if (first_converted.empty()) first_converted = name; }
    }
    if (IsZeroCentredNorm(role)) {
      if (sn.part == ModelPart::kMtp) ev.mtp_norm_tensors.push_back(name);
      std::string fam = NormFamily(sn.rel);
      if (fam.empty()) continue;
      if (sn.part == ModelPart::kLanguageModel) {
        double m = MeanOf(ref);
        if (!std::isnan(m)) { trunk_family[fam].first += m; trunk_family[fam].second += 1; }
      } else if (sn.part == ModelPart::kMtp && LayerIndex(sn.rel) == 0) {
        mtp_family_tensor[fam] = name;
      }
    }
  }
  if (raw > 0 && converted == 0) {
    ev.trunk = NormConvention::kZeroCentred;
    ev.evidence.push_back(fmt::format("{} conv1d weights in raw HF layout [C,1,K] (e.g. {}) => backbone norms zero_centred", raw, first_raw));
  } else if (converted > 0 && raw == 0) {
    ev.trunk = NormConvention::kShifted;
    ev.evidence.push_back(fmt::format("{} conv1d weights in MLX layout [C,K,1] (e.g. {}) => backbone norms shifted (+1)", converted, first_converted));
  } else if (raw > 0 && converted > 0) {
    ev.trunk = NormConvention::kMixed;
    ev.evidence.push_back(fmt::format("conv1d layouts disagree: {} raw [C,1,K] (e.g. {}), {} converted [C,K,1] (e.g. {})", raw, first_raw, converted, first_converted));
  } else if (format == "mlx" || format == "hf") {
    ev.trunk = format == "mlx" ? NormConvention::kShifted : NormConvention::kZeroCentred;
    ev.evidence.push_back(fmt::format("no conv1d weight; {} naming => backbone norms {}", format, NormConventionName(ev.trunk)));
  } else {
    ev.evidence.push_back("no conv1d weight and no recognizable naming: convention unknown");
  }

  if (!ev.mtp_norm_tensors.empty()) {
    int votes_raw = 0, votes_shifted = 0;
    const bool trunk_known = ev.trunk == NormConvention::kZeroCentred || ev.trunk == NormConvention::kShifted;
    for (const auto& [fam, name] : mtp_family_tensor) {
      auto tf = trunk_family.find(fam);
      if (!trunk_known || tf == trunk_family.end()) continue;
      double trunk_mean = tf->second.first / tf->second.second;
      double raw_center = ev.trunk == NormConvention::kShifted ? trunk_mean - 1.0 : trunk_mean;
      double m = MeanOf(*ckpt.Find(name));
      if (std::isnan(m)) continue;
      bool is_raw = std::fabs(m - raw_center) < std::fabs(m - (raw_center + 1.0));
      (is_raw ? votes_raw : votes_shifted) += 1;
      ev.evidence.push_back(fmt::format("{} mean {:.4f} vs backbone {} mean {:.4f} ({}) => {}", name, m, fam, trunk_mean,
                                        NormConventionName(ev.trunk), is_raw ? "zero_centred" : "shifted"));
    }
    if (votes_raw + votes_shifted == 0) {
      ev.evidence.push_back("MTP layer norms could not be compared with the backbone: MTP convention unknown");
    } else if (votes_raw >= 3 * votes_shifted && votes_raw > votes_shifted) {
      ev.mtp = NormConvention::kZeroCentred;
    } else if (votes_shifted >= 3 * votes_raw && votes_shifted > votes_raw) {
      ev.mtp = NormConvention::kShifted;
    } else {
      ev.mtp = NormConvention::kMixed;
      ev.evidence.push_back(fmt::format("MTP layer norms disagree among themselves ({} zero_centred, {} shifted)", votes_raw, votes_shifted));
    }
  }
  if (ev.mtp_norm_tensors.empty() || ev.mtp == NormConvention::kUnknown) {
    ev.overall = ev.trunk;
  } else if (ev.mtp == ev.trunk) {
    ev.overall = ev.trunk;
  } else {
    ev.overall = NormConvention::kMixed;
  }
  return ev;
}

}  // namespace forge::inspect
