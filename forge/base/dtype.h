// The safetensors dtypes (safetensors README / Rust `Dtype`), in the Rust enum order, which is also the
// order the reference writer uses to lay tensors out (descending: largest alignment first).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace forge {

enum class DType : uint8_t {
  kBool, kF4, kF6_E2M3, kF6_E3M2, kU8, kI8, kF8_E5M2, kF8_E4M3, kF8_E8M0, kF8_E4M3FNUZ, kF8_E5M2FNUZ,
  kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kC64, kF64, kI64, kU64,
};
inline constexpr int kDTypeCount = 22;

std::string_view DTypeName(DType d);                     // "BF16"
std::optional<DType> ParseDType(std::string_view name);  // exact, case-sensitive
int DTypeBits(DType d);                                   // 4 for F4, 16 for BF16 ...
bool IsFloat(DType d);  // a floating dtype forge can convert to and from f32 (F16, BF16, F32, F64)

}  // namespace forge
