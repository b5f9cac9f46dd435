// Renames between the HF and MLX (mlx-vlm) namings (spec §3.1). Idempotent: a name already in the target
// naming is kept; names outside the model's parts are kept.
//   HF   model.language_model.X | model.X (text-only) | lm_head.X | mtp.X | model.visual.X
//   MLX  language_model.model.X | language_model.lm_head.X | language_model.mtp.X | vision_tower.X
#pragma once

#include <string>

#include "forge/plan/expr.h"

namespace forge::graft {

enum class HfNaming { kVlm, kText };  // model.language_model.* or model.*

std::string MlxName(const std::string& name);
std::string HfName(const std::string& name, HfNaming naming);

Result<plan::Plan> RenameToMlx(const plan::Plan& in);
Result<plan::Plan> RenameToHf(const plan::Plan& in, HfNaming naming);

}  // namespace forge::graft
