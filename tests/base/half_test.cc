// Float conversions checked against independent definitions: exhaustive over all 16-bit patterns, and
// for f32 -> 16-bit against "nearest of the two neighbours, ties to even" computed in double.
#include "forge/base/half.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

namespace forge {
namespace {

// Value of an IEEE half from its fields, computed in double (independent of the bit tricks).
double HalfValue(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  double v = exp == 0 ? std::ldexp(man, -24) : std::ldexp(1.0 + man / 1024.0, exp - 15);
  return sign ? -v : v;
}

TEST(Half, F16DecodeMatchesDefinitionForAllFinitePatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 31) == 31) continue;
    ASSERT_EQ(static_cast<double>(F16ToF32(static_cast<uint16_t>(h))), HalfValue(static_cast<uint16_t>(h))) << h;
  }
}

TEST(Half, F16RoundTripsEveryPatternIncludingNaNAndInf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = F16ToF32(static_cast<uint16_t>(h));
    uint16_t back = F32ToF16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(back))) << h;
      EXPECT_EQ(back & 0x8000, h & 0x8000);
    } else {
      ASSERT_EQ(back, h) << h;
    }
  }
}

// Checks that `got` is the nearest representable value to x, ties to the even code.
template <typename Decode>
void ExpectNearestEven(float x, uint16_t got, Decode decode) {
  double want = x;
  double g = decode(got);
  // neighbours of the result in code space (same sign)
  double up = decode(static_cast<uint16_t>(got + 1)), down = decode(static_cast<uint16_t>(got - 1));
  double err = std::fabs(g - want);
  const bool has_down = (got & 0x7fff) != 0 && std::isfinite(down);
  if (std::isfinite(up)) {
    ASSERT_LE(err, std::fabs(up - want)) << x;
    if (err == std::fabs(up - want)) {
      ASSERT_EQ(got & 1, 0) << "tie not to even " << x;
    }
  }
  if (has_down) {
    ASSERT_LE(err, std::fabs(down - want)) << x;
    if (err == std::fabs(down - want)) {
      ASSERT_EQ(got & 1, 0) << "tie not to even " << x;
    }
  }
}

TEST(Half, F32ToBf16IsNearestTiesToEven) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    float x = F32FromBits(bits(rng));
    if (!std::isfinite(x) || std::fabs(x) > 3.3e38f) continue;
    ExpectNearestEven(x, F32ToBf16(x), [](uint16_t h) { return static_cast<double>(Bf16ToF32(h)); });
  }
  // exact ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7; even mantissa wins
  EXPECT_EQ(F32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(F32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
}

TEST(Half, F32ToF16IsNearestTiesToEvenIncludingSubnormals) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mag(-30.0f, 16.0f);
  for (int i = 0; i < 200000; ++i) {
    float x = std::ldexp(1.0f + (i % 977) / 977.0f, static_cast<int>(mag(rng))) * (i % 2 ? -1.0f : 1.0f);
    if (std::fabs(x) >= 65504.0f) continue;
    ExpectNearestEven(x, F32ToF16(x), [](uint16_t h) { return static_cast<double>(F16ToF32(h)); });
  }
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(F32ToF16(65519.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // half of the smallest subnormal: tie to even (0)
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: tie to even (2)
}

TEST(Half, NaNStaysNaNWithSign) {
  float qnan = std::nanf(""), neg = -std::nanf("");
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(qnan))));
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(F32FromBits(0x7f800001u)))));  // signalling payload in low bits
  EXPECT_EQ(F32ToBf16(neg) & 0x8000, 0x8000);
  EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(F32FromBits(0xff800001u)))));
}

TEST(Half, Fp8DecodersMatchOcpTables) {
  EXPECT_EQ(F8E4M3ToF32(0x7e), 448.0f);       // max normal
  EXPECT_TRUE(std::isnan(F8E4M3ToF32(0x7f)));
  EXPECT_EQ(F8E4M3ToF32(0x01), std::ldexp(1.0f, -9));  // min subnormal
  EXPECT_EQ(F8E4M3ToF32(0x38), 1.0f);
  EXPECT_EQ(F8E4M3ToF32(0xb8), -1.0f);
  EXPECT_EQ(F8E5M2ToF32(0x7b), 57344.0f);
  EXPECT_TRUE(std::isinf(F8E5M2ToF32(0x7c)));
  EXPECT_EQ(F8E5M2ToF32(0x3c), 1.0f);
}

}  // namespace
}  // namespace forge
