// `forge convert`: HF raw <-> MLX (mlx-vlm) layout as a pipeline of passes over the identity plan.
//
// To MLX: drop (tied lm_head, --drop-mtp, --drop-vision) -> experts to switch_mlp -> conv1d/patch axes ->
// norm +1 where the evidence says raw -> cast -> MLX names. To HF: the reverse passes, with the expert
// layout per block taken from the provenance forge recorded when it converted (else Qwen3.5's official:
// fused backbone, per-expert MTP, unless set). An input already in the target layout goes through the same
// passes, which are all no-ops on it: converting twice changes nothing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "forge/ckpt/checkpoint.h"
#include "forge/ckpt/expected_tensors.h"
#include "forge/plan/expr.h"
#include "graft/norm_shift_pass.h"
#include "graft/runtime_layout.h"
#include "inspect/norm_evidence.h"

namespace forge::graft {

enum class TargetFormat { kMlx, kHf };

struct ConvertOptions {
  TargetFormat to = TargetFormat::kMlx;
  std::optional<DType> dtype;
  bool allow_overflow = false;  // --allow-overflow: values past the --dtype's range become infinities
  bool drop_mtp = false;
  bool drop_vision = false;
  std::optional<inspect::NormConvention> fix_norms;  // bring a mixed checkpoint to this convention
  std::optional<ExpertLayout> hf_backbone_layout;    // --to hf only
  std::optional<ExpertLayout> hf_mtp_layout;
  // --layout: the runtime packaging (overrides `to`; mlx-lm also drops the vision tower). Unset: plain
  // --to mlx / hf, which keep any runtime keys the source had only where they still hold.
  std::optional<RuntimeLayout> layout;
  std::string forge_version = "0";
};

struct ConvertPlan {
  plan::Plan plan;
  nlohmann::json config;                         // config.json to write
  std::map<std::string, std::string> metadata;   // safetensors __metadata__
  std::string source_format;                     // hf / mlx
  inspect::NormEvidence norms;                   // of the source
  NormDeltas deltas;                             // the norm shift applied
  bool already_in_target = false;                // nothing changes but copies
  std::vector<std::string> notes;                // what was decided and why, one line each
  RuntimeOutput runtime;                         // sidecar, contract (--layout)
};

Result<ConvertPlan> BuildConvertPlan(const Checkpoint& ckpt, const ConvertOptions& options);

// "hf", "mlx", "mixed" (both namings) or "unknown", from the tensor names.
std::string DetectSourceFormat(const Checkpoint& ckpt);
// The expert layouts an HF checkpoint can use: "fused", "per_expert" (or "per-expert").
std::optional<ExpertLayout> ParseHfExpertLayout(const std::string& name);
// The same passes over `start` instead of the checkpoint's identity plan (e.g. a dequantized plan of it);
// the checkpoint still supplies config and norm evidence.
Result<ConvertPlan> BuildConvertPlanFrom(const Checkpoint& ckpt, plan::Plan start, const ConvertOptions& options);

}  // namespace forge::graft
