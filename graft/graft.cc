#include "graft/graft.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "forge/base/mapped_file.h"
#include "forge/ckpt/tensor_names.h"
#include "graft/cast_pass.h"
#include "graft/convert.h"
#include "graft/expert_passes.h"
#include "graft/float_view.h"
#include "graft/norm_shift_pass.h"
#include "graft/rename_pass.h"
#include "quantize/dequantize_pass.h"
#include "quantize/policy.h"
#include "quantize/quant_config.h"
#include "quantize/quantize_pass.h"
#include "verify/manifest.h"

namespace forge::graft {
namespace fs = std::filesystem;

namespace {

bool IsMtp(const std::string& name) { return SplitTensorName(name).part == ModelPart::kMtp; }

// The float dtype SRC's weights use (its embedding's), so the head matches it.
std::optional<DType> FloatDTypeOf(const Checkpoint& c) {
  for (const auto& [name, ref] : c.tensors()) {
    if (ClassifyRole(SplitTensorName(name)) == TensorRole::kEmbed && IsFloat(ref.info->dtype)) return ref.info->dtype;
  }
  for (const auto& [name, ref] : c.tensors()) {
    if (EndsWith(name, ".scales") && IsFloat(ref.info->dtype)) return ref.info->dtype;  // affine scales follow it
  }
  return std::nullopt;
}

Result<quant::QuantPolicy> HeadPolicy(const Checkpoint& src, const std::string& mtp_policy, bool* quantize_head) {
  quant::QuantPolicy p;
  const auto& q = src.config()->quant;
  *quantize_head = false;
  if (q && q->top) {
    FORGE_ASSIGN_OR_RETURN(p.top, quant::ParamsFromSpec(*q->top, "quantization"));
    *quantize_head = true;
  }
  FORGE_RETURN_IF_ERROR(quant::ParseMtpPolicy(mtp_policy, &p));
  if (p.mtp == quant::MtpPolicy::kKeep) *quantize_head = false;
  if (p.mtp == quant::MtpPolicy::kExplicit) {
    if (!*quantize_head) p.top = p.mtp_params;  // a float trunk: the head's parameters become the top level
    *quantize_head = true;
  }
  return p;
}

}  // namespace

std::string FileSha1(const std::string& path) {
  if (!fs::exists(path)) return "";
  auto map = MappedFile::Open(path);
  if (!map.ok()) return "";
  return verify::Sha1Hex((*map)->data(), (*map)->size());
}

Result<GraftPlan> BuildGraftPlan(const Checkpoint& src, const Checkpoint& base, const GraftOptions& o) {
  GraftPlan g;
  if (!src.config()) return Status::Invalid("SRC has no config.json", src.dir());
  if (!base.config()) return Status::Invalid("BASE has no config.json", base.dir());
  g.src_format = DetectSourceFormat(src);
  g.base_format = DetectSourceFormat(base);

  // BASE must carry a head.
  std::vector<std::string> base_head;
  for (const auto& [name, ref] : base.tensors()) if (IsMtp(name)) base_head.push_back(name);
  if (base_head.empty()) return Status::Error(ExitCode::kNothingToDo, "BASE has no MTP head (no mtp.* tensors)", base.dir());

  // Proof of fit on the normalized views.
  FORGE_ASSIGN_OR_RETURN(plan::Plan src_view, MlxFloatView(src));
  FORGE_ASSIGN_OR_RETURN(plan::Plan base_view, MlxFloatView(base));
  g.fit = CheckFit(src, src_view, base, base_view);
  if (!g.fit.ok() && !o.allow_lineage_mismatch) {
    std::string list;
    for (size_t i = 0; i < g.fit.refusals.size() && i < 4; ++i) list += (i ? "; " : "") + g.fit.refusals[i];
    if (g.fit.refusals.size() > 4) list += fmt::format("; ... {} more (--json lists all)", g.fit.refusals.size() - 4);
    return Status::Error(ExitCode::kMtpMismatch,
                         fmt::format("graft refused, BASE does not fit SRC ({} problems): {}", g.fit.refusals.size(), list));
  }
  if (!g.fit.ok()) g.notes.push_back(fmt::format("{} fit problems overridden by --allow-lineage-mismatch", g.fit.refusals.size()));

  // The head in MLX float form (names language_model.mtp.*, switch_mlp, shifted norms).
  plan::Plan head;
  for (const auto& t : base_view.tensors) if (IsMtp(t.name)) head.tensors.push_back(t);
  const std::optional<DType> src_dtype = FloatDTypeOf(src);

  // Trunk: SRC carried byte for byte, any old head dropped.
  FORGE_ASSIGN_OR_RETURN(g.out, KeepTrunk(src, IsMtp));
  if (g.out.dropped) g.notes.push_back(fmt::format("{} MTP tensors already in SRC dropped (replaced by BASE's head)", g.out.dropped));

  std::map<std::string, quant::QuantParams> head_quantized;
  quant::QuantPolicy head_policy;  // set for an MLX SRC; used again for the config's quantization entries
  std::vector<std::string> head_names;
  auto add_head = [&](const std::string& name, plan::ExprPtr e) {
    g.head[name] = e->IsPlainCopy() ? "copy of " + e->source.info->name : e->Describe();
    head_names.push_back(name);
    g.out.plan.tensors.push_back({name, std::move(e)});
  };

  if (g.src_format == "mlx") {
    bool quantize_head = false;
    FORGE_ASSIGN_OR_RETURN(head_policy, HeadPolicy(src, o.mtp_policy, &quantize_head));
    if (src_dtype) {
      FORGE_ASSIGN_OR_RETURN(head, CastFloats(head, *src_dtype));
    }
    if (!quantize_head) {
      for (auto& t : head.tensors) add_head(t.name, t.expr);
    } else {
      FORGE_ASSIGN_OR_RETURN(quant::QuantizePassResult q, quant::QuantizePass(head, head_policy, o.rules, nullptr));
      // A BASE module already quantized with the decided parameters is copied verbatim, not requantized.
      std::set<std::string> verbatim;
      std::map<std::string, plan::ExprPtr> planned;
      for (const auto& t : q.plan.tensors) planned[t.name] = t.expr;
      const auto& bq = base.config()->quant;
      for (const auto& [module, params] : q.quantized) {
        auto bw = base.Find(module + ".weight");
        if (!bw || !base.Find(module + ".scales") || !bq) continue;
        auto spec = bq->For(module);
        const bool same_params = spec && spec->mode == quant::QuantModeName(params.mode) && spec->bits == params.bits &&
                                 spec->group_size == params.group_size;
        if (same_params && bw->info->shape == planned.at(module + ".weight")->meta.shape) verbatim.insert(module);
      }
      for (auto& t : q.plan.tensors) {
        const std::string module = t.name.size() > 7 ? t.name.substr(0, t.name.size() - 7) : t.name;
        if (verbatim.count(module)) {
          auto ref = base.Find(t.name);
          FORGE_ASSIGN_OR_RETURN(plan::ExprPtr e, plan::Source(*ref));
          add_head(t.name, e);
        } else {
          add_head(t.name, t.expr);
        }
      }
      head_quantized = q.quantized;
      if (!verbatim.empty()) g.notes.push_back(fmt::format("{} head modules copied verbatim from BASE (already quantized alike)", verbatim.size()));
    }
  } else {
    if (o.mtp_policy != "skip-fc" && o.mtp_policy != "keep") {
      return Status::Error(ExitCode::kUsage, "an HF raw SRC holds float weights only: --mtp-policy must be skip-fc or keep");
    }
    const HfNaming naming = src.config()->nested || src.config()->has_vision_config ? HfNaming::kVlm : HfNaming::kText;
    if (g.base_format == "hf" && !base.HasQuantizedTensors()) {
      for (const auto& n : base_head) {
        FORGE_ASSIGN_OR_RETURN(plan::ExprPtr e, plan::Source(*base.Find(n)));
        if (src_dtype && IsFloat(e->meta.dtype) && e->meta.dtype != *src_dtype) {
          FORGE_ASSIGN_OR_RETURN(e, plan::Cast(e, *src_dtype));
        }
        add_head(n, e);
      }
    } else {
      FORGE_ASSIGN_OR_RETURN(head, ShiftNorms(head, {0.0, -1.0, -1.0}, std::nullopt));
      FORGE_ASSIGN_OR_RETURN(head, UnstackSwitchMlp(head, ExpertLayout::kFused, ExpertLayout::kPerExpert));
      FORGE_ASSIGN_OR_RETURN(head, RenameToHf(head, naming));
      if (src_dtype) {
        FORGE_ASSIGN_OR_RETURN(head, CastFloats(head, *src_dtype));
      }
      for (auto& t : head.tensors) add_head(t.name, t.expr);
    }
  }

  // Output files.
  std::map<std::string, std::string> metadata = src.shards().front()->header().metadata;
  if (metadata.empty()) metadata = {{"format", g.src_format == "mlx" ? "mlx" : "pt"}};
  const std::string head_file = o.sidecar ? "mtp.safetensors" : "model-mtp.safetensors";
  FORGE_RETURN_IF_ERROR(AddHeadShard(&g.out, head_names, head_file, metadata, !o.sidecar));
  if (!o.sidecar || src.has_index()) g.out.layout.index = IndexFor(g.out, src);

  // config.json.
  g.config = src.config()->raw;
  nlohmann::json& text = src.config()->nested ? g.config["text_config"] : g.config;
  std::set<int> layers;
  for (const auto& n : head_names) {
    int li = LayerIndex(SplitTensorName(n).rel);
    if (li >= 0) layers.insert(li);
  }
  text["mtp_num_hidden_layers"] = static_cast<int>(layers.size());
  text["mtp_use_dedicated_embeddings"] = false;
  if (!head_quantized.empty()) {
    nlohmann::json block = g.config.contains("quantization") ? g.config["quantization"] : quant::QuantizationBlock(head_policy.top, {});
    nlohmann::json head_entries = quant::QuantizationBlock(head_policy.top, head_quantized);
    for (auto it = head_entries.begin(); it != head_entries.end(); ++it) {
      if (it->is_object()) block[it.key()] = *it;
    }
    g.config["quantization"] = block;
    g.config["quantization_config"] = block;
  }
  if (o.sidecar) g.config["mlx_lm_extra_tensors"] = {{"mtp_file", head_file}};
  g.config["forge_graft"] = {
      {"forge_version", o.forge_version},
      {"mtp_policy", o.mtp_policy},
      {"head_file", head_file},
      {"source", {{"format", g.src_format}, {"config_sha1", FileSha1((fs::path(src.dir()) / "config.json").string())},
                  {"tokenizer_sha1", FileSha1((fs::path(src.dir()) / "tokenizer.json").string())}}},
      {"donor", {{"format", g.base_format}, {"config_sha1", FileSha1((fs::path(base.dir()) / "config.json").string())},
                 {"tokenizer_sha1", FileSha1((fs::path(base.dir()) / "tokenizer.json").string())}}}};
  return g;
}

}  // namespace forge::graft
