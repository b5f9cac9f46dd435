// Axis layouts that differ between HF and MLX (spec §2.2, §2.7, §3.3):
//   GDN conv1d weight       HF [C,1,K]        MLX [C,K,1]
//   vision patch embedding  HF [O,C,T,H,W]    MLX [O,T,H,W,C] (channels last, as mlx-vlm stores it)
// Each direction only touches tensors still in the other layout, so applying a pass twice is a no-op.
#pragma once

#include "forge/plan/expr.h"

namespace forge::graft {

// `in_channels` tells the patch embedding's layouts apart (3 for RGB); when both candidate axes equal it,
// `source_is_hf` decides.
Result<plan::Plan> AxesToMlx(const plan::Plan& in, uint64_t in_channels, bool source_is_hf);
Result<plan::Plan> AxesToHf(const plan::Plan& in, uint64_t in_channels, bool source_is_hf);

}  // namespace forge::graft
