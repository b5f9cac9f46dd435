// A checkpoint seen as float tensors in MLX layout (names, switch_mlp experts, shifted norms, conv [C,K,1]):
// the convert passes, after dequantizing when it is quantized. graft compares trunks and takes heads in
// this one normalized form, whatever the source's format.
#pragma once

#include "forge/ckpt/checkpoint.h"
#include "forge/plan/expr.h"

namespace forge::graft {

Result<plan::Plan> MlxFloatView(const Checkpoint& ckpt);

// The checkpoint's identity plan with every quantized module dequantized (to `dtype`, else MLX's default),
// names and layout untouched.
Result<plan::Plan> DequantizedPlan(const Checkpoint& ckpt, std::optional<DType> dtype);

}  // namespace forge::graft
