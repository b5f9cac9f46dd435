#include "graft/convert.h"

#include <fmt/format.h>

#include <set>

#include "graft/cast_pass.h"
#include "graft/expert_passes.h"
#include "graft/layout_passes.h"
#include "graft/norm_shift_pass.h"
#include "graft/pass_util.h"
#include "graft/rename_pass.h"
#include "inspect/classify.h"

namespace forge::graft {
namespace {

using inspect::NormConvention;
using json = nlohmann::json;

// Key under which forge records what a conversion changed, so `--to hf` can restore the original.
constexpr const char* kProvenanceKey = "forge_conversion";

}  // namespace

std::string DetectSourceFormat(const Checkpoint& ckpt) {
  bool mlx = false, hf = false;
  for (const auto& [name, ref] : ckpt.tensors()) {
    NamingStyle s = SplitTensorName(name).style;
    mlx |= s == NamingStyle::kMlx;
    hf |= s == NamingStyle::kHfVlm || s == NamingStyle::kHfText;
  }
  if (mlx && hf) return "mixed";
  return mlx ? "mlx" : hf ? "hf" : "unknown";
}

std::optional<ExpertLayout> ParseHfExpertLayout(const std::string& s) {
  if (s == "fused") return ExpertLayout::kFused;
  if (s == "per_expert" || s == "per-expert") return ExpertLayout::kPerExpert;
  return std::nullopt;
}

namespace {

double Delta(NormConvention from, NormConvention to) {
  if (from == to) return 0;
  return to == NormConvention::kShifted ? 1.0 : -1.0;
}

ExpertLayout BlockLayout(const Checkpoint& ckpt, bool mtp) {
  std::set<ExpertLayout> seen;
  for (const auto& [name, ref] : ckpt.tensors()) {
    SplitName sn = SplitTensorName(name);
    if ((sn.part == ModelPart::kMtp) != mtp) continue;
    TensorRole r = ClassifyRole(sn);
    if (r == TensorRole::kExpertFused) seen.insert(ExpertLayout::kFused);
    if (r == TensorRole::kExpertPerExpert) seen.insert(ExpertLayout::kPerExpert);
    if (r == TensorRole::kExpertSwitch) seen.insert(ExpertLayout::kSwitchMlp);
  }
  if (seen.empty()) return ExpertLayout::kNone;
  return seen.size() == 1 ? *seen.begin() : ExpertLayout::kMixed;
}

int CountMtpLayers(const plan::Plan& p) {
  std::set<int> layers;
  for (const auto& t : p.tensors) {
    SplitName sn = SplitTensorName(t.name);
    if (sn.part == ModelPart::kMtp && LayerIndex(sn.rel) >= 0) layers.insert(LayerIndex(sn.rel));
  }
  return static_cast<int>(layers.size());
}

Status RefuseMixed(const inspect::NormEvidence& ev) {
  return Status::Error(
      ExitCode::kStructural,
      fmt::format("mixed norm convention: {}; pass --fix-norms shifted|zero_centered to bring every norm "
                  "to one convention",
                  inspect::DescribeNormGroups(ev)));
}

}  // namespace

Result<ConvertPlan> BuildConvertPlan(const Checkpoint& ckpt, const ConvertOptions& o) {
  FORGE_ASSIGN_OR_RETURN(plan::Plan p, plan::IdentityPlan(ckpt));
  if (ckpt.HasQuantizedTensors() && o.to == TargetFormat::kHf) {
    return Status::Invalid(
        "quantized checkpoint: dequantize it first (forge dequantize), then convert --to hf", ckpt.dir());
  }
  return BuildConvertPlanFrom(ckpt, std::move(p), o);
}

Result<ConvertPlan> BuildConvertPlanFrom(const Checkpoint& ckpt, plan::Plan p, const ConvertOptions& given) {
  ConvertPlan cp;
  ConvertOptions o = given;
  if (o.layout) {
    o.to = IsMlxLayout(*o.layout) ? TargetFormat::kMlx : TargetFormat::kHf;
    if (*o.layout == RuntimeLayout::kMlxLm && !o.drop_vision) {
      o.drop_vision = true;
      cp.notes.push_back("vision tower dropped: mlx-lm's sanitize drops it at load (--layout mlx-lm)");
    }
  }
  if (!ckpt.config())
    return Status::Invalid("convert needs config.json (geometry, tying, vision)", ckpt.dir());
  const ModelConfig& cfg = *ckpt.config();
  cp.source_format = DetectSourceFormat(ckpt);
  if (cp.source_format == "mixed" || cp.source_format == "unknown") {
    return Status::Error(ExitCode::kStructural,
                         fmt::format("tensor names are {} HF/MLX naming", cp.source_format), ckpt.dir());
  }
  // After the naming check: names that mix conventions would show up as missing tensors first.
  FORGE_RETURN_IF_ERROR(
      inspect::RequireConfigAgreesWithTensors(inspect::InspectCheckpoint(ckpt), ckpt.dir()));
  const bool to_mlx = o.to == TargetFormat::kMlx;

  // Norm deltas from the evidence, never from magnitudes alone.
  cp.norms = inspect::DetectNormConvention(ckpt, cp.source_format);
  const NormConvention target = to_mlx ? NormConvention::kShifted : NormConvention::kZeroCentered;
  if (o.fix_norms && *o.fix_norms != target) {
    return Status::Error(ExitCode::kUsage,
                         fmt::format("--fix-norms {} contradicts the {} output, whose norms are {}",
                                     inspect::NormConventionName(*o.fix_norms), to_mlx ? "MLX" : "HF",
                                     inspect::NormConventionName(target)));
  }
  if (cp.norms.trunk != NormConvention::kZeroCentered && cp.norms.trunk != NormConvention::kShifted) {
    return Status::Error(
        ExitCode::kStructural,
        fmt::format("cannot tell the backbone's norm convention: {}", fmt::join(cp.norms.evidence, "; ")),
        ckpt.dir());
  }
  // A head whose convention the config declares (MTPLX's "delta") is not a mixture to refuse: its deltas
  // are known.
  if (cp.norms.overall == NormConvention::kMixed && !o.fix_norms && !cp.norms.mtp_declared)
    return RefuseMixed(cp.norms);
  // Layer norms that disagree among themselves have no per-tensor evidence to fix them by.
  if (cp.norms.mtp_layers == NormConvention::kMixed) return RefuseMixed(cp.norms);
  auto from = [&](NormConvention c) {
    return c == NormConvention::kZeroCentered || c == NormConvention::kShifted ? c : cp.norms.trunk;
  };
  cp.deltas = {Delta(cp.norms.trunk, target), Delta(from(cp.norms.mtp_layers), target),
               Delta(from(cp.norms.mtp_head), target)};

  const TextGeometry& g = cfg.text;
  uint64_t in_channels = 3;
  if (cfg.has_vision_config) in_channels = cfg.raw["vision_config"].value("in_channels", 3);

  // 1. Drops.
  const bool tied = g.tie_word_embeddings;
  plan::Plan kept;
  int dropped_head = 0;
  for (auto& t : p.tensors) {
    ModelPart part = PartOf(t.name);
    if ((o.drop_mtp && part == ModelPart::kMtp) || (o.drop_vision && part == ModelPart::kVision)) continue;
    if (to_mlx && tied && part == ModelPart::kLmHead) {
      ++dropped_head;
      continue;
    }
    kept.tensors.push_back(t);
  }
  if (dropped_head) cp.notes.push_back("lm_head dropped: embeddings are tied (mlx sanitize drops it too)");
  if (o.drop_mtp) cp.notes.push_back("MTP head dropped (--drop-mtp)");
  if (o.drop_vision) cp.notes.push_back("vision tower dropped (--drop-vision)");

  // 2-5. Layout passes.
  const ExpertLayout src_backbone = BlockLayout(ckpt, false), src_mtp = BlockLayout(ckpt, true);
  json provenance;
  if (to_mlx) {
    FORGE_ASSIGN_OR_RETURN(p, StackExpertsToSwitchMlp(kept));
    FORGE_ASSIGN_OR_RETURN(p, AxesToMlx(p, in_channels, cp.source_format == "hf"));
  } else {
    ExpertLayout backbone = ExpertLayout::kFused, mtp = ExpertLayout::kPerExpert;  // Qwen3.5 official
    if (auto it = cfg.raw.find(kProvenanceKey); it != cfg.raw.end() && it->is_object()) {
      provenance = *it;
      if (auto l = ParseHfExpertLayout(provenance.value("backbone_experts", ""))) backbone = *l;
      if (auto l = ParseHfExpertLayout(provenance.value("mtp_experts", ""))) mtp = *l;
      cp.notes.push_back("expert layouts restored from the conversion record in config.json");
    }
    if (o.hf_backbone_layout) backbone = *o.hf_backbone_layout;
    if (o.hf_mtp_layout) mtp = *o.hf_mtp_layout;
    FORGE_ASSIGN_OR_RETURN(p, UnstackSwitchMlp(kept, backbone, mtp));
    FORGE_ASSIGN_OR_RETURN(p, AxesToHf(p, in_channels, cp.source_format == "hf"));
  }
  FORGE_ASSIGN_OR_RETURN(p, ShiftNorms(p, cp.deltas, std::nullopt));
  for (const auto& [label, delta] :
       {std::pair{"backbone", cp.deltas.backbone}, std::pair{"MTP layer", cp.deltas.mtp_layers},
        std::pair{"MTP head", cp.deltas.mtp_head}}) {
    if (delta != 0)
      cp.notes.push_back(
          fmt::format("{} norms {:+g} (to {})", label, delta, inspect::NormConventionName(target)));
  }
  if (o.dtype) {
    FORGE_ASSIGN_OR_RETURN(p, CastFloats(p, *o.dtype, o.allow_overflow));
  }
  const HfNaming naming = cfg.nested || cfg.has_vision_config ? HfNaming::kVlm : HfNaming::kText;
  if (to_mlx) {
    FORGE_ASSIGN_OR_RETURN(p, RenameToMlx(p));
  } else {
    FORGE_ASSIGN_OR_RETURN(p, RenameToHf(p, naming));
  }
  cp.plan = std::move(p);

  // config.json: as the source's, with the MTP declaration made consistent with the tensors written.
  cp.config = cfg.raw;
  json& text = cfg.nested ? cp.config["text_config"] : cp.config;
  const int mtp_layers = CountMtpLayers(cp.plan);
  if (text.contains("mtp_num_hidden_layers") || mtp_layers > 0) text["mtp_num_hidden_layers"] = mtp_layers;
  if (mtp_layers != g.mtp_layers) {
    cp.notes.push_back(fmt::format("mtp_num_hidden_layers {} -> {} (consistent with the tensors)",
                                   g.mtp_layers, mtp_layers));
  }
  if (o.drop_vision) cp.config.erase("vision_config");
  if (to_mlx) {
    if (!cp.config.contains(kProvenanceKey)) {
      cp.config[kProvenanceKey] = {{"from", cp.source_format},
                                   {"backbone_experts", std::string(ExpertLayoutName(src_backbone))},
                                   {"mtp_experts", std::string(ExpertLayoutName(src_mtp))}};
      // mlx-lm knows only qwen3_5 / qwen3_5_moe and reads a flat config as the text config (spec §1.1).
      if (!cfg.nested && EndsWith(cfg.model_type, "_text")) {
        cp.config[kProvenanceKey]["model_type"] = cfg.model_type;
        cp.config["model_type"] = cfg.model_type.substr(0, cfg.model_type.size() - 5);
        cp.notes.push_back(fmt::format("model_type {} -> {} (what mlx-lm loads)", cfg.model_type,
                                       cp.config["model_type"].get<std::string>()));
      }
    }
    cp.metadata = {{"format", "mlx"}};
  } else {
    if (!provenance.is_null() && provenance.contains("model_type"))
      cp.config["model_type"] = provenance["model_type"];
    cp.config.erase(kProvenanceKey);
    cp.metadata = {{"format", "pt"}};
  }
  const RuntimeLayout layout = o.layout ? *o.layout : to_mlx ? RuntimeLayout::kOmlx : RuntimeLayout::kHf;
  if (o.layout || !to_mlx || !ckpt.sidecar().empty()) {
    // Plain --to mlx keeps an oMLX source's keys; any other write states its own layout's keys only.
    FORGE_ASSIGN_OR_RETURN(cp.runtime, ApplyRuntimeLayout(layout, HeadQuantizationOf(cp.plan, ckpt), &cp.plan, &cp.config, o.forge_version));
    for (const auto& n : cp.runtime.notes) cp.notes.push_back(n);
  }
  cp.already_in_target = (to_mlx ? cp.source_format == "mlx" : cp.source_format == "hf") &&
                         cp.deltas.backbone == 0 && cp.deltas.mtp_layers == 0 && cp.deltas.mtp_head == 0 &&
                         !o.dtype;
  if (cp.already_in_target)
    cp.notes.push_back(
        fmt::format("input is already in {} layout: every pass is a no-op", to_mlx ? "MLX" : "HF"));
  return cp;
}

}  // namespace forge::graft
