// The small float formats of MLX quantization, exactly as MLX computes them (docs MLX_QUANT_FORMATS.md
// §4-7): E4M3 ("FN": no infinities, saturating encoder, 0x7F decodes to 480 in MLX), E8M0 scale bytes and
// the E2M1 element table with both rounding rules (CPU: first nearest table entry; Metal: thresholds with
// ties to even and the sign kept on zero).
#pragma once

#include <cmath>
#include <cstdint>

namespace forge::quant {

inline constexpr float kE2M1Table[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                         -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// float32 -> E4M3 as MLX's ToFP8 / Metal fp8_e4m3: round to nearest even, subnormals in steps of 2^-9,
// magnitudes >= 464, infinities and NaN saturate to 448 (0x7E); the sign bit is copied (-0 -> 0x80).
inline uint8_t E4M3Encode(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const float a = std::fabs(x);
  if (!(a < 464.0f)) return sign | 0x7E;  // also NaN and inf
  if (a < 0.015625f) {                     // below 2^-6: subnormal grid of 2^-9
    return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f));  // exact scaling, ties to even
  }
  int e = 0;
  float f = std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  float m = std::nearbyint((f * 2.0f - 1.0f) * 8.0f);  // 3 mantissa bits, ties to even (exact operands)
  int exp = e - 1;
  if (m == 8.0f) {
    m = 0.0f;
    ++exp;
  }
  return sign | static_cast<uint8_t>(((exp + 7) << 3) | static_cast<int>(m));
}

// E4M3 -> float32 as MLX's FromFP8 (0x7F / 0xFF give +-480, not NaN).
inline float E4M3DecodeMlx(uint8_t b) {
  const int exp = (b >> 3) & 0xF, man = b & 7;
  float v = exp == 0 ? std::ldexp(static_cast<float>(man), -9) : std::ldexp(1.0f + man / 8.0f, exp - 7);
  return (b & 0x80) ? -v : v;
}

// Metal fp4_e2m1: sign of x kept (also for zero magnitude), ties to the even code, > 5 saturates, NaN -> 7.
inline uint8_t E2M1EncodeGpu(float x) {
  if (std::isnan(x)) return 0x7;
  const uint8_t sign = std::signbit(x) ? 0x8 : 0x0;
  const float a = std::fabs(x);
  uint8_t m;
  if (a > 5.0f) m = 7;
  else if (a >= 3.5f) m = 6;
  else if (a > 2.5f) m = 5;
  else if (a >= 1.75f) m = 4;
  else if (a > 1.25f) m = 3;
  else if (a >= 0.75f) m = 2;
  else if (a > 0.25f) m = 1;
  else m = 0;
  return sign | m;
}

}  // namespace forge::quant
