#include "inspect/classify.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace forge::inspect {
namespace {

struct PartKey {
  ModelPart part;
  std::string rel;
  bool operator<(const PartKey& o) const { return part != o.part ? part < o.part : rel < o.rel; }
};

std::string FullRel(ModelPart p, const std::string& rel) {
  return p == ModelPart::kLanguageModel ? rel : std::string(ModelPartName(p)) + "." + rel;
}

std::string DetectFormat(const Checkpoint& ckpt, std::vector<std::string>* evidence) {
  int hf = 0, mlx = 0;
  bool meta_mlx = false, scales = false, switch_mlp = false;
  for (const auto& [name, ref] : ckpt.tensors()) {
    SplitName sn = SplitTensorName(name);
    if (sn.style == NamingStyle::kHfVlm || sn.style == NamingStyle::kHfText) ++hf;
    if (sn.style == NamingStyle::kMlx) ++mlx;
    scales |= EndsWith(name, ".scales");
    switch_mlp |= name.find(".switch_mlp.") != std::string::npos;
  }
  for (const auto& s : ckpt.shards()) {
    auto it = s->header().metadata.find("format");
    meta_mlx |= it != s->header().metadata.end() && it->second == "mlx";
  }
  if (hf)
    evidence->push_back(
        fmt::format("{} tensors in HF naming (model.language_model./model.visual./model.)", hf));
  if (mlx) evidence->push_back(fmt::format("{} tensors in MLX naming (language_model./vision_tower.)", mlx));
  if (meta_mlx) evidence->push_back("safetensors metadata format=mlx");
  if (switch_mlp) evidence->push_back("switch_mlp expert stacks");
  if (scales) evidence->push_back(".scales tensors (MLX quantization)");
  const bool is_mlx = mlx > 0 || meta_mlx || switch_mlp || scales;
  if (hf > 0 && is_mlx) return "mixed";
  if (is_mlx) return "mlx";
  if (hf > 0) return "hf";
  return "unknown";
}

constexpr const char* kMixedNamings = "tensor names mix HF and MLX namings";
constexpr const char* kMixedNorms = "mixed norm convention";
constexpr const char* kNoConfig = "no config.json";

// Compares the expected tensors with the actual ones; returns the expected names that are absent.
std::vector<std::string> CheckExpected(const std::vector<ExpectedTensor>& expected,
                                       const std::map<PartKey, const st::TensorInfo*>& actual,
                                       const std::map<PartKey, std::string>& full_names,
                                       const QuantReport& quant, std::vector<std::string>* problems,
                                       std::set<PartKey>* matched) {
  std::vector<std::string> missing;
  for (const auto& e : expected) {
    PartKey key{e.part, e.rel};
    auto it = actual.find(key);
    if (it == actual.end()) {
      missing.push_back(FullRel(e.part, e.rel));
      continue;
    }
    matched->insert(key);
    const std::string& full = full_names.at(key);
    std::vector<uint64_t> shape = it->second->shape;
    if (EndsWith(full, ".weight"))
      shape = LogicalWeightShape(*it->second, quant.SpecOf(full.substr(0, full.size() - 7)));
    bool ok = shape == e.shape;
    if (!ok && e.shape.size() == 3 && EndsWith(e.rel, "conv1d.weight")) {  // MLX stores [C,K,1]
      ok = shape == std::vector<uint64_t>{e.shape[0], e.shape[2], e.shape[1]};
    }
    if (!ok) {
      problems->push_back(fmt::format("{} has shape [{}] but config.json implies [{}]", full,
                                      fmt::join(shape, ", "), fmt::join(e.shape, ", ")));
    }
  }
  return missing;
}

}  // namespace

std::string_view MtpStatusName(MtpStatus s) {
  switch (s) {
    case MtpStatus::kReady:
      return "ready";
    case MtpStatus::kAbsent:
      return "absent";
    case MtpStatus::kDeclaredButMissing:
      return "declared_but_missing";
    case MtpStatus::kPresentButUndeclared:
      return "present_but_undeclared";
    case MtpStatus::kIncomplete:
      return "incomplete";
  }
  return "absent";
}

ExpertLayout DetectExpertLayout(const std::vector<TensorRole>& roles, bool moe_config) {
  std::set<ExpertLayout> seen;
  bool dense_mlp = false;
  for (TensorRole r : roles) {
    if (r == TensorRole::kExpertFused) seen.insert(ExpertLayout::kFused);
    if (r == TensorRole::kExpertPerExpert) seen.insert(ExpertLayout::kPerExpert);
    if (r == TensorRole::kExpertSwitch) seen.insert(ExpertLayout::kSwitchMlp);
    if (r == TensorRole::kLinear) dense_mlp = true;
  }
  if (seen.size() > 1) return ExpertLayout::kMixed;
  if (seen.size() == 1) return *seen.begin();
  if (roles.empty()) return ExpertLayout::kNone;
  return moe_config || !dense_mlp ? ExpertLayout::kNone : ExpertLayout::kDense;
}

Report InspectCheckpoint(const Checkpoint& ckpt) {
  Report r;
  r.path = ckpt.dir();
  r.tensor_count = ckpt.tensors().size();
  r.total_bytes = ckpt.total_bytes();
  r.shards = static_cast<int>(ckpt.shards().size());
  r.indexed = ckpt.has_index();
  r.aux_files = ckpt.aux_files();
  r.warnings = ckpt.warnings();
  for (const auto& f : ckpt.unlisted_safetensors())
    r.warnings.push_back(fmt::format("{} is not part of the checkpoint (not in the index)", f));
  r.format = DetectFormat(ckpt, &r.format_evidence);
  if (r.format == "mixed") r.problems.push_back(kMixedNamings);

  std::map<PartKey, const st::TensorInfo*> actual;
  std::map<PartKey, std::string> full_names;
  std::vector<TensorRole> backbone_roles, mtp_roles;
  std::set<int> mtp_layers;
  for (const auto& [name, ref] : ckpt.tensors()) {
    r.bytes_by_dtype[std::string(DTypeName(ref.info->dtype))] += ref.info->nbytes();
    SplitName sn = SplitTensorName(name);
    TensorRole role = ClassifyRole(sn);
    if (sn.part == ModelPart::kVision) ++r.vision_tensors;
    if (sn.part == ModelPart::kMtp) {
      ++r.mtp.tensors;
      mtp_roles.push_back(role);
      if (int li = LayerIndex(sn.rel); li >= 0) mtp_layers.insert(li);
    }
    if (sn.part == ModelPart::kLanguageModel && LayerIndex(sn.rel) >= 0) backbone_roles.push_back(role);
    if (sn.part == ModelPart::kLanguageModel || sn.part == ModelPart::kLmHead || sn.part == ModelPart::kMtp) {
      actual[{sn.part, sn.rel}] = ref.info;
      full_names[{sn.part, sn.rel}] = name;
    }
  }
  r.mtp.layers_present = static_cast<int>(mtp_layers.size());
  r.quant = BuildQuantReport(ckpt);
  for (const auto& p : r.quant.problems) r.problems.push_back(p);
  r.norms = DetectNormConvention(ckpt, r.format);
  if (r.norms.overall == NormConvention::kMixed && !r.norms.mtp_declared) {
    r.problems.push_back(fmt::format("{}: {}: bring them to one with `forge convert --fix-norms shifted`",
                                     kMixedNorms, DescribeNormGroups(r.norms)));
  }

  const bool moe = ckpt.config() && ckpt.config()->text.is_moe();
  r.backbone_layout = DetectExpertLayout(backbone_roles, moe);
  r.mtp_layout = r.mtp.tensors ? DetectExpertLayout(mtp_roles, moe) : ExpertLayout::kNone;
  if (r.backbone_layout == ExpertLayout::kMixed)
    r.warnings.push_back("backbone layers use different expert layouts");

  if (!ckpt.config()) {
    r.problems.push_back(std::string(kNoConfig) +
                         ": geometry, MTP declaration and quantization cannot be checked");
    r.mtp.status = r.mtp.tensors ? MtpStatus::kPresentButUndeclared : MtpStatus::kAbsent;
  } else {
    const ModelConfig& cfg = *ckpt.config();
    r.has_config = true;
    r.model_type = cfg.model_type;
    r.text_model_type = cfg.text_model_type;
    r.architecture = cfg.architecture;
    r.geometry = cfg.text;
    r.layer_types_derived = cfg.text.layer_types_derived;
    r.vision_config = cfg.has_vision_config;
    const TextGeometry& g = cfg.text;
    for (const auto& f : cfg.missing_fields)
      r.problems.push_back(fmt::format("config.json lacks required field '{}'", f));
    if (static_cast<int64_t>(g.layer_types.size()) != g.layers && cfg.missing_fields.empty()) {
      r.problems.push_back(fmt::format("layer_types has {} entries but num_hidden_layers is {}",
                                       g.layer_types.size(), g.layers));
    }
    r.mtp.declared_key_present = g.mtp_declared;
    r.mtp.declared_layers = g.mtp_layers;
    if (cfg.missing_fields.empty() && static_cast<int64_t>(g.layer_types.size()) == g.layers) {
      std::set<PartKey> matched;
      ExpertLayout trunk_layout =
          r.backbone_layout == ExpertLayout::kMixed ? ExpertLayout::kFused : r.backbone_layout;
      auto missing_trunk =
          CheckExpected(ExpectedTrunk(g, trunk_layout), actual, full_names, r.quant, &r.problems, &matched);
      for (const auto& m : missing_trunk) r.problems.push_back(fmt::format("missing trunk tensor {}", m));
      if (r.mtp.tensors > 0) {
        int64_t layers = std::max<int64_t>({g.mtp_layers, static_cast<int64_t>(r.mtp.layers_present), 1});
        ExpertLayout ml = r.mtp_layout == ExpertLayout::kMixed ? ExpertLayout::kFused : r.mtp_layout;
        r.mtp.missing =
            CheckExpected(ExpectedMtp(g, ml, layers), actual, full_names, r.quant, &r.problems, &matched);
      }
      for (const auto& [key, info] : actual) {
        const std::string& full = full_names.at(key);
        bool companion = EndsWith(full, ".scales") || EndsWith(full, ".biases");
        if (matched.count(key) || companion) continue;
        if (key.part == ModelPart::kLmHead && g.tie_word_embeddings) {
          r.warnings.push_back(
              fmt::format("{} present although embeddings are tied (loaders ignore it)", full));
        } else {
          r.warnings.push_back(fmt::format("unrecognized tensor {}", full));
        }
      }
    }
  }

  // MTP status and its fix.
  MtpReport& m = r.mtp;
  const std::string dir = ckpt.dir();
  if (r.has_config) {
    if (m.tensors == 0) {
      m.status = m.declared_layers > 0 ? MtpStatus::kDeclaredButMissing : MtpStatus::kAbsent;
    } else if (!m.missing.empty()) {
      m.status = MtpStatus::kIncomplete;
    } else if (m.declared_layers == 0) {
      m.status = MtpStatus::kPresentButUndeclared;
    } else {
      m.status = MtpStatus::kReady;
    }
  }
  switch (m.status) {
    case MtpStatus::kReady:
      break;
    case MtpStatus::kAbsent:
      m.fix = fmt::format(
          "no MTP head: graft the base model's with `forge graft --src {} --mtp-from BASE --out OUT`", dir);
      break;
    case MtpStatus::kDeclaredButMissing:
      m.fix = fmt::format(
          "config declares mtp_num_hidden_layers={} but there are no mtp.* tensors: set it to 0 with "
          "`forge fix-config {}`, or restore the head with `forge graft --src {} --mtp-from BASE --out OUT`",
          m.declared_layers, dir, dir);
      break;
    case MtpStatus::kPresentButUndeclared:
      m.fix = fmt::format(
          "{} MTP tensors ({} layer(s)) present but config.json does not declare them: set "
          "mtp_num_hidden_layers={} with `forge fix-config {}`, or drop them with `forge strip-mtp`",
          m.tensors, m.layers_present, std::max(1, m.layers_present), dir);
      break;
    case MtpStatus::kIncomplete:
      m.fix = fmt::format(
          "MTP head incomplete ({} tensors missing, e.g. {}): re-graft it with `forge graft --src {} "
          "--mtp-from BASE --out OUT` or drop it with `forge strip-mtp`",
          m.missing.size(), m.missing.empty() ? "" : m.missing.front(), dir);
      break;
  }

  r.layout = DetectRuntimeLayout(ckpt, r.format, r.mtp.tensors > 0, r.quant);
  for (const auto& w : r.layout.warnings) r.warnings.push_back(w);

  for (const auto& p : r.problems) {
    const bool naming_or_norms =
        p == kMixedNamings || p.rfind(kMixedNorms, 0) == 0 || p.rfind(kNoConfig, 0) == 0;
    if (!naming_or_norms) r.config_problems.push_back(p);
  }
  if (!r.problems.empty()) {
    r.exit_code = ExitCode::kStructural;
    r.verdict = fmt::format("structural problems ({}); MTP {}", r.problems.size(), MtpStatusName(m.status));
    r.fix = r.norms.overall == NormConvention::kMixed ? r.problems.front() : "fix the problems listed above";
  } else if (m.status == MtpStatus::kReady) {
    r.exit_code = ExitCode::kOk;
    r.verdict =
        fmt::format("MTP-ready: {} MTP tensor(s), {} layer(s), experts {}, norms {}", m.tensors,
                    m.layers_present, ExpertLayoutName(r.mtp_layout), NormConventionName(r.norms.overall));
  } else if (m.status == MtpStatus::kAbsent) {
    r.exit_code = ExitCode::kNothingToDo;
    r.verdict = "no MTP head (absent)";
    r.fix = m.fix;
  } else {
    r.exit_code = ExitCode::kMtpMismatch;
    r.verdict = fmt::format("NOT MTP-ready: {}", MtpStatusName(m.status));
    r.fix = m.fix;
  }
  return r;
}

Status RequireConfigAgreesWithTensors(const Report& r, const std::string& dir) {
  if (r.config_problems.empty()) return Status();
  return Status::Error(
      ExitCode::kStructural,
      fmt::format("config.json and the tensors disagree ({} problem(s); `forge inspect config` lists "
                  "them): {}",
                  r.config_problems.size(), r.config_problems.front()),
      dir + "/config.json");
}

}  // namespace forge::inspect
