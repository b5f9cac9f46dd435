// mxfp4 / mxfp8 (docs MLX_QUANT_FORMATS.md §5 CPU, §7.2 Metal): E8M0 scale = 2^round(log2(amax / M)).
#include <cmath>
#include <limits>

#include "quantize/fp_formats.h"
#include "quantize/groups.h"
#include "quantize/round_to.h"

namespace forge::quant {
namespace {

constexpr int kGroup = 32;

// MLX CPU: nearest E2M1 entry by distances computed in T, the first (lowest index) minimum wins.
uint32_t E2M1ArgminCpu(DType t, float x) {
  uint32_t best = 0;
  float best_d = std::fabs(RoundTo(t, x - kE2M1Table[0]));
  for (uint32_t i = 1; i < 16; ++i) {
    const float d = std::fabs(RoundTo(t, x - kE2M1Table[i]));
    if (d < best_d) {
      best_d = d;
      best = i;
    }
  }
  return best;
}

}  // namespace

FpScale MxfpScaleOf(Rules rules, DType t, bool fp8, float amax) {
  const float m = fp8 ? 448.0f : 6.0f;
  if (rules == Rules::kMlxCpu) {
    // Every intermediate of MLX's CPU op graph is rounded to the input dtype T.
    const float s = RoundTo(t, amax / m);
    float e = 0.0f;
    if (s != 0.0f) e = std::nearbyint(RoundTo(t, std::log2(s)));  // glibc log2f, half to even
    const uint8_t byte = static_cast<uint8_t>(static_cast<int>(e) + 127);  // wraps modulo 256, as MLX
    return {byte, RoundTo(t, std::ldexp(1.0f, static_cast<int>(e))), 0.0f};
  }
  // Metal: binary32 throughout; log2 correctly rounded (computed in double, rounded once).
  const float s = amax / m;
  uint8_t byte;
  if (std::isinf(s) || std::isnan(s)) {
    byte = 255;
  } else if (s == 0.0f) {
    byte = 0;  // log2(0) = -inf, saturating conversion, clamped to -127
  } else {
    const float l = static_cast<float>(std::log2(static_cast<double>(s)));
    float n = std::round(l);  // half away from zero
    n = std::fmin(std::fmax(n, -127.0f), 127.0f);
    byte = static_cast<uint8_t>(static_cast<int>(n) + 127);
  }
  const float d = byte == 255 ? std::numeric_limits<float>::infinity() : std::ldexp(1.0f, byte - 127);
  return {byte, 0.0f, 1.0f / d};
}

uint8_t MxfpGroup(Rules rules, DType t, bool fp8, const float* w, uint32_t* codes) {
  float amax = 0.0f;
  for (int i = 0; i < kGroup; ++i) amax = std::fmax(amax, std::fabs(w[i]));
  const FpScale s = MxfpScaleOf(rules, t, fp8, amax);
  for (int i = 0; i < kGroup; ++i) {
    if (rules == Rules::kMlxCpu) {
      const float x = RoundTo(t, w[i] / s.divisor);
      codes[i] = fp8 ? E4M3Encode(x) : E2M1ArgminCpu(t, x);
    } else {
      const float x = w[i] * s.multiplier;
      codes[i] = fp8 ? E4M3Encode(x) : E2M1EncodeGpu(x);
    }
  }
  return s.byte;
}

}  // namespace forge::quant
