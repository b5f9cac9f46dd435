#include "graft/quantize_recipe.h"

#include <fmt/format.h>

#include "forge/ckpt/model_family.h"
#include "graft/cast_pass.h"
#include "graft/convert.h"
#include "graft/float_view.h"
#include "inspect/classify.h"
#include "quantize/dequantize_pass.h"
#include "quantize/quant_config.h"
#include "quantize/quantize_pass.h"

namespace forge::graft {
namespace {

// A checkpoint whose tensors are Qwen3.5/3.6's but whose config.json does not say so (missing, or only a
// quantization block) would be quantized matrix by matrix, vision tower, routers and mtp.fc included: the
// decision that matters most for MTP acceptance, taken silently. Refused unless --tensor-level asks for it.
Status RefuseUnclaimedQwen(const Checkpoint& ckpt, const QwenClaim& claim) {
  const std::string config = ckpt.dir() + "/config.json";
  return Status::Error(
      ExitCode::kStructural,
      fmt::format("{} but '{}' is a Qwen3.5/3.6 tensor: copy the model's config.json into {}, or pass "
                  "--tensor-level to quantize every matrix as a plain tensor set",
                  ckpt.config() ? "config.json names no Qwen3.5/3.6 model (model_type)" : "no config.json",
                  claim.tensor, ckpt.dir()),
      config);
}

void DropQuantizationKeys(nlohmann::json* cfg) {
  cfg->erase("quantization");
  cfg->erase("quantization_config");
  if (cfg->contains("text_config") && (*cfg)["text_config"].is_object())
    (*cfg)["text_config"].erase("quantization_config");
}

// The float plan of an MLX-layout checkpoint: dequantized when quantized.
Result<plan::Plan> FloatPlan(const Checkpoint& ckpt, std::optional<DType> dtype, std::string* kind) {
  if (ckpt.HasQuantizedTensors()) *kind = "mlx-quantized";
  return DequantizedPlan(ckpt, dtype);
}

}  // namespace

Result<QuantizeRecipe> BuildQuantizeRecipe(const Checkpoint& ckpt, QuantizeOptions o) {
  QuantizeRecipe r;
  plan::Plan p;
  r.metadata = {{"format", "mlx"}};
  const QwenClaim claim = ClaimsQwen35(ckpt);
  if (!o.tensor_level && claim.any() && !claim.by_config) return RefuseUnclaimedQwen(ckpt, claim);
  if (!o.tensor_level && claim.by_config) {
    ConvertOptions co;  // to MLX; an MLX input goes through as plain copies
    FORGE_ASSIGN_OR_RETURN(ConvertPlan cp, BuildConvertPlan(ckpt, co));
    r.input_kind = cp.source_format;
    r.notes = cp.notes;
    r.config = cp.config;
    if (ckpt.HasQuantizedTensors()) {
      FORGE_ASSIGN_OR_RETURN(p, FloatPlan(ckpt, o.dtype, &r.input_kind));
      r.notes.push_back("requantize: dequantized with the parameters in config.json, then quantized");
    } else {
      p = std::move(cp.plan);
    }
  } else {
    r.input_kind = "tensors";
    o.policy.qwen_model = false;
    r.notes.push_back(o.tensor_level
                          ? "--tensor-level: every 2-D+ float .weight whose last dim divides, names untouched"
                          : "no Qwen3.5/3.6 model here: tensor-level mode (every 2-D+ float .weight whose last "
                            "dim divides)");
    if (ckpt.config()) r.config = ckpt.config()->raw;
    FORGE_ASSIGN_OR_RETURN(p, FloatPlan(ckpt, o.dtype, &r.input_kind));
    auto fmt_it = ckpt.shards().front()->header().metadata.find("format");
    if (fmt_it != ckpt.shards().front()->header().metadata.end()) r.metadata["format"] = fmt_it->second;
  }
  if (o.dtype) {
    FORGE_ASSIGN_OR_RETURN(p, CastFloats(p, *o.dtype, o.allow_overflow));
  }
  if (o.measure_fidelity) r.fidelity = std::make_shared<quant::FidelityCollector>();
  FORGE_ASSIGN_OR_RETURN(quant::QuantizePassResult q, quant::QuantizePass(p, o.policy, o.rules, r.fidelity));
  r.plan = std::move(q.plan);
  r.quantized = std::move(q.quantized);
  r.kept = std::move(q.kept);
  if (!r.config) r.config = nlohmann::json::object();
  DropQuantizationKeys(&*r.config);
  nlohmann::json block = quant::QuantizationBlock(o.policy.top, r.quantized);
  (*r.config)["quantization"] = block;
  (*r.config)["quantization_config"] = block;
  return r;
}

Result<QuantizeRecipe> BuildDequantizeRecipe(const Checkpoint& ckpt, std::optional<DType> dtype,
                                             bool allow_overflow) {
  QuantizeRecipe r;
  r.input_kind = "mlx";
  // The geometry rules are Qwen3.5/3.6's: a config.json of another model (or one holding only a
  // quantization block, as tensor-level quantize writes) has nothing for them to check.
  if (ckpt.config() && ClaimsQwen35(ckpt).any()) {
    FORGE_RETURN_IF_ERROR(
        inspect::RequireConfigAgreesWithTensors(inspect::InspectCheckpoint(ckpt), ckpt.dir()));
  }
  FORGE_ASSIGN_OR_RETURN(r.plan, FloatPlan(ckpt, dtype, &r.input_kind));
  if (r.input_kind != "mlx-quantized") {
    return Status::Error(ExitCode::kNothingToDo, "no quantized tensors (no .scales): nothing to dequantize",
                         ckpt.dir());
  }
  if (dtype) {
    FORGE_ASSIGN_OR_RETURN(r.plan, CastFloats(r.plan, *dtype, allow_overflow));
  }
  if (ckpt.config()) {
    r.config = ckpt.config()->raw;
    DropQuantizationKeys(&*r.config);
  }
  auto fmt_it = ckpt.shards().front()->header().metadata.find("format");
  r.metadata = {
      {"format", fmt_it != ckpt.shards().front()->header().metadata.end() ? fmt_it->second : "mlx"}};
  return r;
}

}  // namespace forge::graft
