// Rounding a float32 value to a storage dtype and back (round to nearest even), the "computed in float,
// rounded to T" step of MLX's op graphs.
#pragma once

#include "forge/base/dtype.h"
#include "forge/base/half.h"

namespace forge::quant {

inline float RoundTo(DType t, float x) {
  switch (t) {
    case DType::kBF16: return Bf16ToF32(F32ToBf16(x));
    case DType::kF16: return F16ToF32(F32ToF16(x));
    default: return x;
  }
}

}  // namespace forge::quant
