#include "graft/runtime_layout.h"

#include <fmt/format.h>

#include <cstring>
#include <map>

#include "forge/plan/evaluate.h"
#include "graft/norm_shift_pass.h"
#include "graft/pass_util.h"
#include "inspect/quant_report.h"

namespace forge::graft {
namespace {

using json = nlohmann::json;

// Config keys that only one runtime reads: a conversion out of that layout removes them, so the output never
// declares a sidecar, an encoding or a contract it does not have.
constexpr const char* kMtplxKeys[] = {"mlx_lm_extra_tensors", "mtplx_mtp_norm_encoding", "mtp_norm_encoding",
                                      "mtplx_mtp_quantization", "mtplx_mtp_contract"};

json& TextConfig(json& config) {
  return config.contains("text_config") && config["text_config"].is_object() ? config["text_config"] : config;
}

// Elements of the shifted norm `e` whose zero-centred s - 1, stored in e's dtype, does not give s back
// (Sterbenz: exact for every s >= 0.5). Norms are a few KB: evaluated here, at plan time.
Result<int> RoundedByUnshift(const plan::ExprPtr& e) {
  FORGE_ASSIGN_OR_RETURN(plan::ExprPtr down, plan::AddConstant(e, -1.0, e->meta.dtype));
  FORGE_ASSIGN_OR_RETURN(plan::ExprPtr back, plan::AddConstant(down, 1.0, e->meta.dtype));
  FORGE_ASSIGN_OR_RETURN(plan::Tensor a, plan::Evaluate(*e));
  FORGE_ASSIGN_OR_RETURN(plan::Tensor b, plan::Evaluate(*back));
  const uint64_t width = static_cast<uint64_t>(DTypeBits(e->meta.dtype)) / 8, n = e->meta.numel();
  int rounded = 0;
  for (uint64_t i = 0; i < n; ++i) rounded += std::memcmp(a.data + i * width, b.data + i * width, width) != 0;
  return rounded;
}

json SpecJson(const QuantSpec& s) {
  return {{"bits", s.bits}, {"group_size", s.group_size}, {"mode", s.mode}};
}

Status WriteMtplx(const HeadQuantization& quantized, plan::Plan* plan, json* config,
                  const std::string& forge_version, RuntimeOutput* r) {
  plan::Plan head, rest;
  for (const auto& t : plan->tensors) (PartOf(t.name) == ModelPart::kMtp ? head : rest).tensors.push_back(t);
  if (head.tensors.empty()) {
    r->notes.push_back("no MTP head: the mtplx layout is the MLX trunk alone (no sidecar, no contract)");
    return Status();
  }
  // Zero-centred head norms, declared: MTPLX adds exactly 1 to them and never runs its magnitude heuristic.
  for (const auto& t : head.tensors) {
    if (IsZeroCenteredNorm(ClassifyRole(SplitTensorName(t.name))) && t.expr->meta.shape.size() == 1) {
      FORGE_ASSIGN_OR_RETURN(int n, RoundedByUnshift(t.expr));
      r->head_norm_elements_rounded += n;
    }
  }
  FORGE_ASSIGN_OR_RETURN(head, ShiftNorms(head, {0.0, -1.0, -1.0}, std::nullopt));
  for (auto& t : head.tensors) {
    t.name = "mtp." + SplitTensorName(t.name).rel;
    r->sidecar_tensors.insert(t.name);
    rest.tensors.push_back(t);
  }
  *plan = std::move(rest);
  r->sidecar_file = kMtplxSidecar;

  json& c = *config;
  c["mlx_lm_extra_tensors"] = {{"mtp_file", kMtplxSidecar}};
  c["mtplx_mtp_norm_encoding"] = "delta";
  c["mtplx_mtp_contract"] = {{"base_hidden_variant", "post_norm"}, {"concat_order", "embedding_hidden"}};
  if (!quantized.empty()) {
    json modules = json::object();
    for (const auto& [rel, spec] : quantized) modules[rel] = SpecJson(spec);
    const QuantSpec& first = quantized.begin()->second;
    json q = SpecJson(first);
    q["prequantized"] = true;
    // MTPLX's policies: "cyankiwi" keeps fc and the norms float, "all" quantizes fc too.
    q["policy"] = quantized.count("fc") ? "all" : "cyankiwi";
    q["quantized_modules"] = json::array();
    for (const auto& [rel, spec] : quantized) q["quantized_modules"].push_back(rel);
    q["modules"] = modules;
    q["norm_encoding"] = "delta";
    c["mtplx_mtp_quantization"] = q;
  }
  // What forge knows, nothing measured: depth from the head, MTPLX's documented default sampler.
  const json& text = TextConfig(c);
  r->runtime_contract =
      json{{"artifact_role", "mtp_artifact"},
           {"mtp_sidecar", kMtplxSidecar},
           {"mtp_depth_max", text.value("mtp_num_hidden_layers", 1)},
           {"sampler", {{"temperature", 0.6}, {"top_p", 0.95}, {"top_k", 20}}},
           {"base_trunk", "."},
           {"forge_provenance",
            {{"forged_locally", true},
             {"forge_version", forge_version},
             {"source_format", "mlx"},
             {"forge_recipe",
              {{"mtp_norm_encoding", "delta"},
               {"mtp_policy", quantized.empty() ? "float" : c["mtplx_mtp_quantization"]["policy"]}}}}}};
  r->notes.push_back(fmt::format(
      "MTP head -> {} ({} tensors, norms zero-centred, declared \"delta\"{})", kMtplxSidecar,
      r->sidecar_tensors.size(),
      r->head_norm_elements_rounded
          ? fmt::format("; {} norm elements below 0.5 round in s - 1", r->head_norm_elements_rounded)
          : ""));
  return Status();
}

}  // namespace

std::optional<RuntimeLayout> ParseRuntimeLayout(const std::string& name) {
  if (name == "hf") return RuntimeLayout::kHf;
  if (name == "mlx-lm") return RuntimeLayout::kMlxLm;
  if (name == "omlx") return RuntimeLayout::kOmlx;
  if (name == "mtplx") return RuntimeLayout::kMtplx;
  return std::nullopt;
}

std::string_view RuntimeLayoutName(RuntimeLayout l) {
  switch (l) {
    case RuntimeLayout::kHf:
      return "hf";
    case RuntimeLayout::kMlxLm:
      return "mlx-lm";
    case RuntimeLayout::kOmlx:
      return "omlx";
    case RuntimeLayout::kMtplx:
      return "mtplx";
  }
  return "hf";
}

bool IsMlxLayout(RuntimeLayout l) { return l != RuntimeLayout::kHf; }

HeadQuantization HeadQuantizationOf(const plan::Plan& plan, const Checkpoint& src) {
  const inspect::QuantReport q = inspect::BuildQuantReport(src);
  std::map<std::string, QuantSpec> by_rel;
  for (const auto& m : q.quantized_modules) {
    SplitName sn = SplitTensorName(m + ".weight");
    if (sn.part != ModelPart::kMtp) continue;
    if (auto spec = q.SpecOf(m)) by_rel[sn.rel.substr(0, sn.rel.size() - 7)] = *spec;
  }
  std::map<std::string, QuantSpec> out;
  for (const auto& t : plan.tensors) {
    SplitName sn = SplitTensorName(t.name);
    if (sn.part != ModelPart::kMtp || !EndsWith(sn.rel, ".scales")) continue;
    const std::string rel = sn.rel.substr(0, sn.rel.size() - 7);
    auto it = by_rel.find(rel);
    if (it != by_rel.end())
      out[rel] = it->second;
    else if (q.top)
      out[rel] = *q.top;
  }
  return out;
}

Result<RuntimeOutput> ApplyRuntimeLayout(RuntimeLayout layout, const HeadQuantization& head_quantization,
                                         plan::Plan* plan, json* config, const std::string& forge_version) {
  RuntimeOutput r;
  for (const char* k : kMtplxKeys) config->erase(k);
  json& text = TextConfig(*config);
  bool has_head = false;
  for (const auto& t : plan->tensors) has_head |= PartOf(t.name) == ModelPart::kMtp;
  switch (layout) {
    case RuntimeLayout::kHf:
    case RuntimeLayout::kMlxLm:
      break;
    case RuntimeLayout::kOmlx:
      // transformers' Qwen3.5 text config has the key (false: the head shares embed_tokens); kept as is where
      // the source states it.
      if (has_head && !text.contains("mtp_use_dedicated_embeddings"))
        text["mtp_use_dedicated_embeddings"] = false;
      break;
    case RuntimeLayout::kMtplx:
      FORGE_RETURN_IF_ERROR(WriteMtplx(head_quantization, plan, config, forge_version, &r));
      break;
  }
  return r;
}

}  // namespace forge::graft
