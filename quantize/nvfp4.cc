// nvfp4 without a global scale (docs MLX_QUANT_FORMATS.md §6 CPU, §7.2 Metal): E4M3 scale = amax / 6.
#include <cmath>

#include "quantize/fp_formats.h"
#include "quantize/groups.h"
#include "quantize/round_to.h"

namespace forge::quant {

uint8_t Nvfp4Group(Rules rules, DType t, const float* w, uint32_t* codes) {
  constexpr int kGroup = 16;
  float amax = 0.0f;
  for (int i = 0; i < kGroup; ++i) amax = std::fmax(amax, std::fabs(w[i]));

  if (rules == Rules::kMlxCpu) {
    const float s = RoundTo(t, amax / 6.0f);
    const uint8_t byte = E4M3Encode(s);
    const float d = RoundTo(t, E4M3DecodeMlx(byte));
    for (int i = 0; i < kGroup; ++i) {
      const float x = RoundTo(t, w[i] / d);  // d == 0 gives inf/NaN: every distance equal, code 0
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
    return byte;
  }

  const uint8_t byte = E4M3Encode(amax / 6.0f);
  const float d = E4M3DecodeMlx(byte);
  const float r = d == 0.0f ? 0.0f : 1.0f / d;  // a rounded reciprocal, multiplied
  for (int i = 0; i < kGroup; ++i) codes[i] = E2M1EncodeGpu(w[i] * r);
  return byte;
}

}  // namespace forge::quant
