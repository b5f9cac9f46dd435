#include "forge/base/quant_rules.h"

namespace forge {

std::optional<std::string> QuantParamsProblem(std::string_view mode, int bits, int group_size) {
  auto needs = [&](int want_bits, int want_group) -> std::optional<std::string> {
    if (bits == want_bits && group_size == want_group) return std::nullopt;
    return std::string(mode) + " needs group size " + std::to_string(want_group) + " and " +
           std::to_string(want_bits) + " bits";
  };
  if (mode == "affine") {
    if (group_size != 32 && group_size != 64 && group_size != 128)
      return "affine group size must be 32, 64 or 128";
    if (bits < 2 || bits > 8 || bits == 7) return "affine bits must be 2, 3, 4, 5, 6 or 8";
    return std::nullopt;
  }
  if (mode == "mxfp4") return needs(4, 32);
  if (mode == "mxfp8") return needs(8, 32);
  if (mode == "nvfp4") return needs(4, 16);
  return "unknown mode '" + std::string(mode) + "' (affine, mxfp4, mxfp8 or nvfp4)";
}

}  // namespace forge
