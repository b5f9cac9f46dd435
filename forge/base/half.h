// Exact scalar conversions between f32 and the 16- and 8-bit float formats of checkpoints.
//
// f32 -> bf16/f16 round to nearest, ties to even; NaN stays NaN (quieted, sign kept); overflow gives
// infinity, as IEEE and PyTorch do. Decoders are exact. Header-only so that hot loops inline them.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace forge {

inline uint32_t F32Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float F32FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float Bf16ToF32(uint16_t h) { return F32FromBits(static_cast<uint32_t>(h) << 16); }

inline uint16_t F32ToBf16(float f) {
  uint32_t u = F32Bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding_bias) >> 16);
}

inline float F16ToF32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return F32FromBits(sign | 0x7f800000u | (man << 13));  // inf / NaN (payload kept)
  if (exp == 0) {
    // zero or subnormal: man * 2^-24, exact in f32
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  return F32FromBits(sign | ((exp + 112u) << 23) | (man << 13));
}

inline uint16_t F32ToF16(float f) {
  uint32_t u = F32Bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // result is subnormal (or zero): value / 2^-24 rounded to nearest even integer
    float scaled = F32FromBits(abs) * 16777216.0f;  // exact (power of two)
    float r = std::nearbyint(scaled);               // default rounding mode: ties to even
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  uint32_t exp = (abs >> 23) - 112u;
  uint32_t man = abs & 0x7fffffu;
  uint32_t half = (exp << 10) | (man >> 13);
  uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // carry into exponent is correct
  return static_cast<uint16_t>(sign | half);
}

// OCP FP8 E4M3 (no infinities, 0x7f/0xff NaN, max 448) and E5M2 (IEEE-like) decoders.
inline float F8E4M3ToF32(uint8_t b) {
  int sign = b >> 7, exp = (b >> 3) & 0xf, man = b & 7;
  float v;
  if (exp == 0xf && man == 7) return std::nanf("");
  if (exp == 0) v = std::ldexp(static_cast<float>(man), -9);
  else v = std::ldexp(1.0f + man / 8.0f, exp - 7);
  return sign ? -v : v;
}
inline float F8E5M2ToF32(uint8_t b) { return F16ToF32(static_cast<uint16_t>(b) << 8); }

}  // namespace forge
