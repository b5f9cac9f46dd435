#include "inspect/runtime_support.h"

#include <fmt/format.h>

#include <cmath>

#include "forge/ckpt/tensor_names.h"
#include "inspect/norm_evidence.h"
#include "inspect/quant_report.h"

namespace forge::inspect {
LayoutReport DetectRuntimeLayout(const Checkpoint& ckpt, const std::string& format, bool has_head,
                                 const QuantReport& q) {
  const bool quantized = q.quantized();
  LayoutReport r;
  const bool sidecar = !ckpt.sidecar().empty();
  bool mlx_named_head = false, vision = false;
  for (const auto& [name, ref] : ckpt.tensors()) {
    SplitName sn = SplitTensorName(name);
    mlx_named_head |= sn.part == ModelPart::kMtp && sn.style == NamingStyle::kMlx;
    vision |= sn.part == ModelPart::kVision;
  }
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& config = ckpt.config() ? ckpt.config()->raw : empty;
  if (format == "hf") {
    r.name = "hf";
    r.evidence.push_back("HF tensor names (model.*, mtp.*)");
  } else if (format == "mlx" && sidecar) {
    r.name = "mtplx";
    r.evidence.push_back(fmt::format("MLX trunk with the MTP head in the sidecar {}", ckpt.sidecar()));
  } else if (format == "mlx") {
    r.name = vision ? "omlx" : "mlx-lm";
    r.evidence.push_back(
        fmt::format("MLX names, head {} in the model's shards; {}", has_head ? "inlined" : "absent",
                    vision ? "vision tower kept (mlx-vlm, oMLX)" : "no vision tower (mlx-lm)"));
  }

  const bool hf = format == "hf", mlx = format == "mlx";
  const bool declared = !DeclaredDeltaKey(ckpt).empty();
  auto add = [&](const char* runtime, bool loads, bool mtp, std::string why) {
    r.runtimes.push_back({runtime, loads, loads && mtp, std::move(why)});
  };
  if (!has_head) {
    const std::string why = "no MTP head in the checkpoint (forge graft adds one)";
    add("vllm", hf && !quantized, false, hf ? why : "vLLM reads HF names only");
    add("transformers", hf && !quantized, false, hf ? why : "transformers reads HF names only");
    add("mlx-lm", hf || mlx, false, why);
    add("mlx-lm-pr990", hf || mlx, false, why);
    add("omlx", hf || mlx, false, why);
    add("mtplx", mlx, false, mlx ? why : "MTPLX loads the trunk through mlx-lm from an MLX folder");
    return r;
  }
  add("vllm", hf && !quantized, hf,
      hf ? (quantized ? "MLX-quantized tensors: vLLM reads none"
                      : "reads mtp.* (per-expert or fused experts)")
         : "reads only names starting mtp.; an MLX-named head and MLX quantization are invisible to it");
  add("transformers", hf && !quantized, false,
      hf ? "transformers' Qwen3.5 has no MTP module: the trunk loads, the head is ignored"
         : "reads HF names only");
  add("mlx-lm", hf || mlx, false, "stock sanitize drops every mtp.* key: the trunk loads without its head");
  add("mlx-lm-pr990", hf || mlx, !sidecar,
      sidecar ? "globs model*.safetensors: the sidecar head is not read"
              : "sanitize keeps mtp.* when text_config.mtp_num_hidden_layers > 0 (hidden fed pre-norm)");
  add("omlx", hf || mlx, true,
      sidecar ? "merges mtp.safetensors when the shards hold no mtp.*" : "reads the inlined head");
  add("mtplx", mlx, true,
      !mlx ? "MTPLX loads the trunk through mlx-lm from an MLX folder: convert --layout mtplx"
      : sidecar
          ? (declared ? "sidecar with its norm encoding declared" : "sidecar; norm encoding not declared")
          : "finds the inlined mtp.* through the index");

  // Known loader bugs (docs/LAYOUTS.md).
  if (mlx_named_head) {
    for (const auto& [name, ref] : ckpt.tensors()) {
      SplitName sn = SplitTensorName(name);
      if (sn.part != ModelPart::kMtp || !IsZeroCenteredNorm(ClassifyRole(sn)) || ref.info->shape.size() != 1)
        continue;
      const double m = MeanOf(ref);
      if (!std::isnan(m) && m < 0.5) {
        r.warnings.push_back(
            fmt::format("{}: mean {:.3f} < 0.5: mlx-lm PR #990's sanitize (and oMLX's mlx-lm patch) shift it "
                        "by +1 again at "
                        "load; oMLX's mlx-vlm path and the mtplx layout (declared encoding) do not",
                        name, m));
      }
    }
  }
  if (sidecar && mlx && !declared) {
    r.warnings.push_back(
        fmt::format("{}: no declared norm encoding: MTPLX guesses the head's convention from its "
                    "magnitudes (convert --layout mtplx declares it)",
                    ckpt.sidecar()));
  }
  if (sidecar && mlx) {
    const auto mq = config.find("mtplx_mtp_quantization");
    const bool prequantized = mq != config.end() && mq->is_object() && mq->value("prequantized", false);
    for (const auto& m : q.quantized_modules) {
      if (prequantized || SplitTensorName(m + ".weight").part != ModelPart::kMtp) continue;
      const auto spec = q.SpecOf(m);
      if (spec && q.top && *spec == *q.top && spec->mode == "affine") continue;  // what MTPLX assumes
      r.warnings.push_back(
          fmt::format("{}: quantized {} but not marked prequantized (mtplx_mtp_quantization.prequantized): "
                      "MTPLX dequantizes "
                      "it with the trunk's affine bits and group size",
                      m, spec ? QuantSpecString(*spec) : "(unknown)"));
      break;
    }
  }
  return r;
}

}  // namespace forge::inspect
