// Float dtype cast (`--dtype`): every float tensor to `to` with one rounding, except A_log, which mlx-lm
// never casts (its cast_predicate; the SSM decay stays in its stored precision), and quantization
// companions (.scales/.biases) and integer tensors, which are not weights to cast.
#pragma once

#include "forge/plan/expr.h"

namespace forge::graft {

Result<plan::Plan> CastFloats(const plan::Plan& in, DType to);

}  // namespace forge::graft
