#include "forge/base/dtype.h"

#include <array>

namespace forge {
namespace {

struct DTypeInfo {
  std::string_view name;
  int bits;
};

// Indexed by DType; names and sizes from the safetensors Rust crate.
constexpr std::array<DTypeInfo, kDTypeCount> kInfo = {{
    {"BOOL", 8}, {"F4", 4}, {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8}, {"I8", 8}, {"F8_E5M2", 8},
    {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16}, {"U16", 16},
    {"F16", 16}, {"BF16", 16}, {"I32", 32}, {"U32", 32}, {"F32", 32}, {"C64", 64}, {"F64", 64},
    {"I64", 64}, {"U64", 64},
}};

}  // namespace

std::string_view DTypeName(DType d) { return kInfo[static_cast<int>(d)].name; }
int DTypeBits(DType d) { return kInfo[static_cast<int>(d)].bits; }

std::optional<DType> ParseDType(std::string_view name) {
  for (int i = 0; i < kDTypeCount; ++i) {
    if (kInfo[i].name == name) return static_cast<DType>(i);
  }
  return std::nullopt;
}

bool IsFloat(DType d) {
  return d == DType::kF16 || d == DType::kBF16 || d == DType::kF32 || d == DType::kF64;
}

}  // namespace forge
