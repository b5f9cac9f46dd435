// Affine quantization (docs MLX_QUANT_FORMATS.md §3 CPU, §7.1 Metal): edge-anchored, all float32.
#include <cmath>

#include "quantize/groups.h"

namespace forge::quant {
namespace {

// The float32 nearest 1e-7 (0x33D6BF95): MLX's floor on the step.
constexpr float kMinStep = 1e-7f;

float RoundHalfAway(float x) { return std::round(x); }
float RoundHalfEven(float x) { return std::nearbyint(x); }

}  // namespace

AffineScale AffineScaleOf(Rules rules, float hi, float lo, int bits) {
  const float n = static_cast<float>((1 << bits) - 1);
  float step = std::fmax((hi - lo) / n, kMinStep);
  const bool anchor_lo = std::fabs(lo) > std::fabs(hi);
  const float anchor = anchor_lo ? lo : hi;
  if (!anchor_lo) step = -step;
  const float k = rules == Rules::kMlxGpu ? RoundHalfAway(anchor / step) : RoundHalfEven(anchor / step);
  if (k != 0.0f) return {anchor / k, anchor};
  return {step, 0.0f};
}

void AffineGroup(Rules rules, const float* w, int g, int bits, uint32_t* codes, float* scale_out, float* bias_out) {
  const float n = static_cast<float>((1 << bits) - 1);
  const bool gpu = rules == Rules::kMlxGpu;
  // Metal's running maximum starts at 0: an all-negative group spans [lo, 0].
  float hi = gpu ? 0.0f : w[0], lo = w[0];
  for (int i = 0; i < g; ++i) {
    hi = std::fmax(hi, w[i]);
    lo = std::fmin(lo, w[i]);
  }
  const AffineScale s = AffineScaleOf(rules, hi, lo, bits);
  for (int i = 0; i < g; ++i) {
    const float q = (w[i] - s.bias) / s.scale;  // a true division, as MLX (not a reciprocal multiply)
    float r = gpu ? RoundHalfAway(q) : RoundHalfEven(q);
    // NaN (the overflow corner of a huge constant group) becomes 0, as the x86 conversion MLX relies on.
    if (!(r >= 0.0f)) r = 0.0f;
    if (r > n) r = n;
    codes[i] = static_cast<uint32_t>(r);
  }
  *scale_out = s.scale;
  *bias_out = s.bias;
}

}  // namespace forge::quant
