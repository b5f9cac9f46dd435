// Float dtype cast (`--dtype`): every float tensor to `to` with one rounding, except A_log, which mlx-lm
// never casts (its cast_predicate; the SSM decay stays in its stored precision), and quantization
// companions (.scales/.biases) and integer tensors, which are not weights to cast.
#pragma once

#include "forge/plan/expr.h"

namespace forge::graft {

// A finite value that rounds to +-inf in `to` fails the write naming the tensor unless `overflow_allowed`.
Result<plan::Plan> CastFloats(const plan::Plan& in, DType to, bool overflow_allowed = false);

}  // namespace forge::graft
