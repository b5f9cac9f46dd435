// nvfp4 without a global scale (docs MLX_QUANT_FORMATS.md §6 CPU, §7.2 Metal): E4M3 scale = amax / 6.
#include <cmath>

#include "quantize/fp_formats.h"
#include "quantize/groups.h"
#include "quantize/round_to.h"

namespace forge::quant {

FpScale Nvfp4ScaleOf(Rules rules, DType t, float amax) {
  if (rules == Rules::kMlxCpu) {
    const uint8_t byte = E4M3Encode(RoundTo(t, amax / 6.0f));
    return {byte, RoundTo(t, E4M3DecodeMlx(byte)), 0.0f};
  }
  const uint8_t byte = E4M3Encode(amax / 6.0f);
  const float d = E4M3DecodeMlx(byte);
  return {byte, 0.0f, d == 0.0f ? 0.0f : 1.0f / d};  // a rounded reciprocal, multiplied
}

uint8_t Nvfp4Group(Rules rules, DType t, const float* w, uint32_t* codes) {
  constexpr int kGroup = 16;
  float amax = 0.0f;
  for (int i = 0; i < kGroup; ++i) amax = std::fmax(amax, std::fabs(w[i]));
  const FpScale s = Nvfp4ScaleOf(rules, t, amax);
  if (rules == Rules::kMlxGpu) {
    for (int i = 0; i < kGroup; ++i) codes[i] = E2M1EncodeGpu(w[i] * s.multiplier);
    return s.byte;
  }
  for (int i = 0; i < kGroup; ++i) {
    const float x = RoundTo(t, w[i] / s.divisor);  // divisor 0 gives inf/NaN: every distance equal, code 0
    uint32_t best = 0;
    float best_d = std::fabs(x - kE2M1Table[0]);  // distances in float32
    for (uint32_t j = 1; j < 16; ++j) {
      const float dist = std::fabs(x - kE2M1Table[j]);
      if (dist < best_d) {
        best_d = dist;
        best = j;
      }
    }
    codes[i] = best;
  }
  return s.byte;
}

}  // namespace forge::quant
