// Element access to float tensors of any checkpoint float dtype (F16, BF16, F32, F64) through f32.
// Unaligned-safe (memcpy loads): safetensors data need not be aligned.
#pragma once

#include <cstdint>
#include <cstring>

#include "forge/base/dtype.h"
#include "forge/base/half.h"

namespace forge {

// Returns 0 for non-float dtypes; callers check IsFloat() first.
inline float LoadAsF32(DType d, const uint8_t* p, uint64_t i) {
  switch (d) {
    case DType::kBF16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); return Bf16ToF32(h); }
    case DType::kF16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); return F16ToF32(h); }
    case DType::kF32: { float f; std::memcpy(&f, p + 4 * i, 4); return f; }
    case DType::kF64: { double v; std::memcpy(&v, p + 8 * i, 8); return static_cast<float>(v); }
    default: return 0.0f;
  }
}

// Rounds to nearest even for the 16-bit dtypes; ignores non-float dtypes.
inline void StoreFromF32(DType d, uint8_t* p, uint64_t i, float v) {
  switch (d) {
    case DType::kBF16: { uint16_t h = F32ToBf16(v); std::memcpy(p + 2 * i, &h, 2); break; }
    case DType::kF16: { uint16_t h = F32ToF16(v); std::memcpy(p + 2 * i, &h, 2); break; }
    case DType::kF32: std::memcpy(p + 4 * i, &v, 4); break;
    case DType::kF64: { double x = v; std::memcpy(p + 8 * i, &x, 8); break; }
    default: break;
  }
}

}  // namespace forge
