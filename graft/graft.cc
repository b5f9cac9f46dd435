#include "graft/graft.h"

#include <fmt/format.h>

#include <filesystem>
#include <set>

#include "forge/base/mapped_file.h"
#include "forge/ckpt/tensor_names.h"
#include "graft/cast_pass.h"
#include "graft/convert.h"
#include "graft/expert_passes.h"
#include "graft/float_view.h"
#include "graft/norm_shift_pass.h"
#include "graft/pass_util.h"
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
    if (ClassifyRole(SplitTensorName(name)) == TensorRole::kEmbed && IsFloat(ref.info->dtype))
      return ref.info->dtype;
  }
  for (const auto& [name, ref] : c.tensors()) {
    if (EndsWith(name, ".scales") && IsFloat(ref.info->dtype))
      return ref.info->dtype;  // affine scales follow it
  }
  return std::nullopt;
}

Result<quant::QuantPolicy> HeadPolicy(const Checkpoint& src, const std::string& mtp_policy,
                                      bool* quantize_head) {
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
  const bool src_mlx = g.src_format == "mlx";
  g.layout = o.layout ? *o.layout : src_mlx ? RuntimeLayout::kOmlx : RuntimeLayout::kHf;
  if (IsMlxLayout(g.layout) != src_mlx) {
    return Status::Error(
        ExitCode::kUsage,
        fmt::format("graft keeps SRC's trunk byte for byte: --layout {} needs {} SRC, and SRC is {} "
                    "(forge convert --layout {} the graft's output instead)",
                    RuntimeLayoutName(g.layout), src_mlx ? "an HF raw" : "an MLX", g.src_format,
                    RuntimeLayoutName(g.layout)),
        src.dir());
  }

  // BASE must carry a head.
  std::vector<std::string> base_head;
  for (const auto& [name, ref] : base.tensors())
    if (IsMtp(name)) base_head.push_back(name);
  if (base_head.empty())
    return Status::Error(ExitCode::kNothingToDo, "BASE has no MTP head (no mtp.* tensors)", base.dir());

  // Proof of fit on the normalized views.
  FORGE_ASSIGN_OR_RETURN(plan::Plan src_view, MlxFloatView(src));
  FORGE_ASSIGN_OR_RETURN(plan::Plan base_view, MlxFloatView(base));
  g.fit = CheckFit(src, src_view, base, base_view);
  if (!g.fit.ok() && !o.allow_lineage_mismatch) {
    std::string list;
    for (size_t i = 0; i < g.fit.refusals.size() && i < 4; ++i) list += (i ? "; " : "") + g.fit.refusals[i];
    if (g.fit.refusals.size() > 4)
      list += fmt::format("; ... {} more (--json lists all)", g.fit.refusals.size() - 4);
    return Status::Error(
        ExitCode::kMtpMismatch,
        fmt::format("graft refused, BASE does not fit SRC ({} problems): {}", g.fit.refusals.size(), list));
  }
  if (!g.fit.ok())
    g.notes.push_back(
        fmt::format("{} fit problems overridden by --allow-lineage-mismatch", g.fit.refusals.size()));

  // The head in MLX float form (names language_model.mtp.*, switch_mlp, shifted norms).
  plan::Plan head;
  for (const auto& t : base_view.tensors)
    if (IsMtp(t.name)) head.tensors.push_back(t);
  const std::optional<DType> src_dtype = FloatDTypeOf(src);

  // Trunk: SRC carried byte for byte, any old head dropped (and the vision tower for mlx-lm, whose sanitize
  // drops it at load, as convert --layout mlx-lm does).
  const bool drop_vision = g.layout == RuntimeLayout::kMlxLm;
  const auto dropped = [&](const std::string& name) {
    const ModelPart part = SplitTensorName(name).part;
    return part == ModelPart::kMtp || (drop_vision && part == ModelPart::kVision);
  };
  FORGE_ASSIGN_OR_RETURN(g.out, KeepTrunk(src, dropped));
  size_t old_head = 0, vision_dropped = 0;
  for (const auto& n : g.out.dropped) (IsMtp(n) ? old_head : vision_dropped) += 1;
  if (old_head)
    g.notes.push_back(
        fmt::format("{} MTP tensors already in SRC dropped (replaced by BASE's head)", old_head));
  if (vision_dropped)
    g.notes.push_back(
        fmt::format("vision tower dropped ({} tensors): mlx-lm's sanitize drops it at load (--layout mlx-lm)",
                    vision_dropped));

  std::map<std::string, quant::QuantParams> head_quantized;
  quant::QuantPolicy head_policy;  // set for an MLX SRC; used again for the config's quantization entries
  plan::Plan head_out;             // the head as written, before its layout packages it
  auto add_head = [&](const std::string& name, plan::ExprPtr e) {
    head_out.tensors.push_back({name, std::move(e)});
  };

  if (src_mlx) {
    bool quantize_head = false;
    FORGE_ASSIGN_OR_RETURN(head_policy, HeadPolicy(src, o.mtp_policy, &quantize_head));
    if (src_dtype) {
      FORGE_ASSIGN_OR_RETURN(head, CastFloats(head, *src_dtype));
    }
    if (!quantize_head) {
      for (auto& t : head.tensors) add_head(t.name, t.expr);
    } else {
      FORGE_ASSIGN_OR_RETURN(quant::QuantizePassResult q,
                             quant::QuantizePass(head, head_policy, o.rules, nullptr));
      // A BASE module already quantized with the decided parameters is copied verbatim, not requantized.
      std::set<std::string> verbatim;
      std::map<std::string, plan::ExprPtr> planned;
      for (const auto& t : q.plan.tensors) planned[t.name] = t.expr;
      const auto& bq = base.config()->quant;
      for (const auto& [module, params] : q.quantized) {
        auto bw = base.Find(module + ".weight");
        if (!bw || !base.Find(module + ".scales") || !bq) continue;
        auto spec = bq->For(module);
        const bool same_params = spec && spec->mode == quant::QuantModeName(params.mode) &&
                                 spec->bits == params.bits && spec->group_size == params.group_size;
        if (same_params && bw->info->shape == planned.at(module + ".weight")->meta.shape)
          verbatim.insert(module);
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
      if (!verbatim.empty())
        g.notes.push_back(fmt::format("{} head modules copied verbatim from BASE (already quantized alike)",
                                      verbatim.size()));
    }
  } else {
    if (o.mtp_policy != "skip-fc" && o.mtp_policy != "keep") {
      return Status::Error(ExitCode::kUsage,
                           "an HF raw SRC holds float weights only: --mtp-policy must be skip-fc or keep");
    }
    const HfNaming naming =
        src.config()->nested || src.config()->has_vision_config ? HfNaming::kVlm : HfNaming::kText;
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

  // config.json.
  g.config = src.config()->raw;
  if (drop_vision) g.config.erase("vision_config");
  nlohmann::json& text = src.config()->nested ? g.config["text_config"] : g.config;
  std::set<int> layers;
  for (const auto& t : head_out.tensors) {
    int li = LayerIndex(SplitTensorName(t.name).rel);
    if (li >= 0) layers.insert(li);
  }
  text["mtp_num_hidden_layers"] = static_cast<int>(layers.size());
  text["mtp_use_dedicated_embeddings"] = false;
  if (!head_quantized.empty()) {
    nlohmann::json block = g.config.contains("quantization") ? g.config["quantization"]
                                                             : quant::QuantizationBlock(head_policy.top, {});
    nlohmann::json head_entries = quant::QuantizationBlock(head_policy.top, head_quantized);
    for (auto it = head_entries.begin(); it != head_entries.end(); ++it) {
      if (it->is_object()) block[it.key()] = *it;
    }
    g.config["quantization"] = block;
    g.config["quantization_config"] = block;
  }

  // The runtime layout packages the head (mtplx: mtp.* names, declared zero-centred norms, config keys).
  HeadQuantization head_quantization;
  for (const auto& [module, p] : head_quantized) {
    const std::string rel = SplitTensorName(module + ".weight").rel;  // "layers.0.mlp.gate.weight"
    head_quantization[rel.substr(0, rel.size() - 7)] =
        QuantSpec{std::string(quant::QuantModeName(p.mode)), p.bits, p.group_size};
  }
  FORGE_ASSIGN_OR_RETURN(RuntimeOutput runtime, ApplyRuntimeLayout(g.layout, head_quantization, &head_out,
                                                                   &g.config, o.forge_version));
  for (const auto& n : runtime.notes) g.notes.push_back(n);
  g.runtime_contract = runtime.runtime_contract;
  std::vector<std::string> head_names;
  for (auto& t : head_out.tensors) {
    g.head[t.name] = t.expr->IsPlainCopy() ? "copy of " + t.expr->source.info->name : t.expr->Describe();
    head_names.push_back(t.name);
    g.out.plan.tensors.push_back(std::move(t));
  }

  // Output files.
  const bool sidecar = !runtime.sidecar_file.empty();
  std::map<std::string, std::string> metadata = src.shards().front()->header().metadata;
  if (metadata.empty()) metadata = {{"format", src_mlx ? "mlx" : "pt"}};
  const std::string head_file = sidecar ? runtime.sidecar_file : "model-mtp.safetensors";
  FORGE_RETURN_IF_ERROR(AddHeadShard(&g.out, head_names, head_file, metadata, !sidecar));
  if (!sidecar || src.has_index()) g.out.layout.index = IndexFor(g.out, src);

  g.config["forge_graft"] = {
      {"forge_version", o.forge_version},
      {"mtp_policy", o.mtp_policy},
      {"layout", RuntimeLayoutName(g.layout)},
      {"head_file", head_file},
      {"source",
       {{"format", g.src_format},
        {"config_sha1", FileSha1((fs::path(src.dir()) / "config.json").string())},
        {"tokenizer_sha1", FileSha1((fs::path(src.dir()) / "tokenizer.json").string())}}},
      {"donor",
       {{"format", g.base_format},
        {"config_sha1", FileSha1((fs::path(base.dir()) / "config.json").string())},
        {"tokenizer_sha1", FileSha1((fs::path(base.dir()) / "tokenizer.json").string())}}}};
  return g;
}

}  // namespace forge::graft
