// The vectorized row kernels against the scalar group code they replace (groups.h, itself checked against
// the real MLX library in vectors_test.cc): every mode, both rule sets, bf16 / f16 / f32 input, on rows
// built to hit the corners where a vector rewrite could round differently: exact .5 ties of the affine
// grid, E2M1 and E4M3 decision thresholds, signed zeros, subnormals, huge and constant groups, and one
// NaN or infinity per row (those groups take the scalar path).
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "forge/base/float_access.h"
#include "quantize/bitpack.h"
#include "quantize/codec.h"
#include "quantize/groups.h"
#include "quantize/row_kernels.h"

namespace forge::quant {
namespace {

struct Encoded {
  std::vector<uint8_t> packed, scales, biases;
};

// The scalar reference: one group at a time through groups.h, packed code by code.
Encoded ScalarQuantize(const QuantParams& p, Rules rules, DType dt, const std::vector<uint8_t>& in, uint64_t k) {
  const uint64_t rows = in.size() * 8 / DTypeBits(dt) / k, g = p.group_size, groups = k / g;
  const DType sdt = ScalesDType(p, dt);
  Encoded e{std::vector<uint8_t>(rows * k * p.bits / 8), std::vector<uint8_t>(rows * groups * DTypeBits(sdt) / 8),
            std::vector<uint8_t>(rows * groups * DTypeBits(sdt) / 8)};
  std::vector<float> w(g);
  std::vector<uint32_t> codes(g);
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t gi = 0; gi < groups; ++gi) {
      for (uint64_t i = 0; i < g; ++i) w[i] = LoadAsF32(dt, in.data(), r * k + gi * g + i);
      const uint64_t gx = r * groups + gi;
      if (p.mode == QuantMode::kAffine) {
        float s, b;
        AffineGroup(rules, w.data(), p.group_size, p.bits, codes.data(), &s, &b);
        StoreFromF32(sdt, e.scales.data(), gx, s);
        StoreFromF32(sdt, e.biases.data(), gx, b);
      } else if (p.mode == QuantMode::kNvfp4) {
        e.scales[gx] = Nvfp4Group(rules, dt, w.data(), codes.data());
      } else {
        e.scales[gx] = MxfpGroup(rules, dt, p.mode == QuantMode::kMxfp8, w.data(), codes.data());
      }
      for (uint64_t i = 0; i < g; ++i) PackCode(e.packed.data() + r * k * p.bits / 8, gi * g + i, p.bits, codes[i]);
    }
  }
  return e;
}

Encoded CodecQuantize(const QuantParams& p, Rules rules, DType dt, const std::vector<uint8_t>& in, uint64_t k) {
  const uint64_t rows = in.size() * 8 / DTypeBits(dt) / k, groups = k / p.group_size;
  const DType sdt = ScalesDType(p, dt);
  Encoded e{std::vector<uint8_t>(rows * k * p.bits / 8), std::vector<uint8_t>(rows * groups * DTypeBits(sdt) / 8),
            std::vector<uint8_t>(rows * groups * DTypeBits(sdt) / 8)};
  QuantizeRows(p, rules, dt, in.data(), rows, k, e.packed.data(), e.scales.data(), e.biases.data());
  return e;
}

// Rows of 256 elements, each row one family of hard values (scaled so that each mode meets them).
std::vector<float> HardValues(std::mt19937& rng) {
  constexpr int kRow = 256;
  std::vector<float> v;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  const float e2m1_edges[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 0.0f, 7.0f};
  for (int family = 0; family < 12; ++family) {
    for (int i = 0; i < kRow; ++i) {
      float x = 0;
      switch (family) {
        case 0: x = normal(rng) * 0.02f; break;                               // weights
        case 1: x = static_cast<float>(pick(rng)) * 0.5f - 3.0f; break;      // affine .5 ties
        case 2: x = static_cast<float>(pick(rng) - 8); break;                // small integers
        case 3: x = e2m1_edges[pick(rng)] * (i % 2 ? -1.0f : 1.0f); break;   // E2M1 thresholds, amax 6
        case 4: x = e2m1_edges[pick(rng)] * 0.0625f * (i % 3 ? 1.0f : -1.0f); break;
        case 5: x = (i % 4 == 0) ? -0.0f : 0.0f; break;                      // signed zeros
        case 6: x = normal(rng) * 1e-39f; break;                             // subnormals
        case 7: x = normal(rng) * 1e30f; break;                              // huge
        case 8: x = 3.0f; break;                                             // constant
        case 9: x = -normal(rng) * normal(rng); break;                       // heavy tails
        case 10: x = std::ldexp(1.0f + static_cast<float>(pick(rng)) / 16.0f, pick(rng) - 12); break;  // E4M3 grid
        case 11: x = normal(rng) * 448.0f; break;
      }
      v.push_back(x);
    }
  }
  v[5 * 256 + 40] = NAN;  // one non-finite group in two rows
  v[9 * 256 + 200] = -INFINITY;
  return v;
}

std::vector<uint8_t> Encode(DType dt, const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * DTypeBits(dt) / 8);
  for (size_t i = 0; i < v.size(); ++i) StoreFromF32(dt, out.data(), i, v[i]);
  return out;
}

// Every vector width this CPU runs (16 lanes on AVX-512, 8 on AVX2, 4 everywhere) against the scalar code.
class RowKernels : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!SetQuantizeLanes(GetParam())) GTEST_SKIP() << GetParam() << " lanes: not on this CPU";
  }
  void TearDown() override { SetQuantizeLanes(0); }
};

TEST_P(RowKernels, EqualTheScalarGroupCodeBitForBit) {
  std::mt19937 rng(7);
  const std::vector<float> values = HardValues(rng);
  const QuantParams params[] = {{QuantMode::kAffine, 2, 32}, {QuantMode::kAffine, 3, 64}, {QuantMode::kAffine, 4, 64},
                                {QuantMode::kAffine, 4, 128}, {QuantMode::kAffine, 6, 32}, {QuantMode::kAffine, 8, 64},
                                {QuantMode::kMxfp4, 4, 32}, {QuantMode::kMxfp8, 8, 32}, {QuantMode::kNvfp4, 4, 16}};
  int compared = 0;
  for (DType dt : {DType::kBF16, DType::kF16, DType::kF32}) {
    const std::vector<uint8_t> in = Encode(dt, values);
    for (const QuantParams& p : params) {
      for (Rules rules : {Rules::kMlxGpu, Rules::kMlxCpu}) {
        const Encoded want = ScalarQuantize(p, rules, dt, in, 256), got = CodecQuantize(p, rules, dt, in, 256);
        const std::string what = std::string(QuantModeName(p.mode)) + std::to_string(p.bits) + " g" +
                                 std::to_string(p.group_size) + (rules == Rules::kMlxCpu ? " cpu " : " gpu ") +
                                 std::string(DTypeName(dt));
        EXPECT_EQ(want.packed, got.packed) << what;
        EXPECT_EQ(want.scales, got.scales) << what;
        if (HasBiases(p)) {
          EXPECT_EQ(want.biases, got.biases) << what;
        }
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 54);
}

// Random weights at every scale the E2M1 / E4M3 grids care about, many rows.
TEST_P(RowKernels, RandomRowsAtManyScales) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-30, 30);
  std::vector<float> values(512 * 128);
  for (size_t i = 0; i < values.size(); i += 16) {
    const float scale = std::ldexp(1.0f, exponent(rng));
    for (size_t j = 0; j < 16; ++j) values[i + j] = normal(rng) * scale;
  }
  for (QuantMode mode : {QuantMode::kAffine, QuantMode::kMxfp4, QuantMode::kMxfp8, QuantMode::kNvfp4}) {
    const QuantParams p = DefaultParams(mode);
    for (Rules rules : {Rules::kMlxGpu, Rules::kMlxCpu}) {
      const std::vector<uint8_t> in = Encode(DType::kBF16, values);
      const Encoded want = ScalarQuantize(p, rules, DType::kBF16, in, 512), got = CodecQuantize(p, rules, DType::kBF16, in, 512);
      EXPECT_EQ(want.packed, got.packed) << QuantModeName(mode);
      EXPECT_EQ(want.scales, got.scales) << QuantModeName(mode);
      EXPECT_EQ(want.biases, got.biases) << QuantModeName(mode);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Lanes, RowKernels, ::testing::Values(4, 8, 16),
                         [](const ::testing::TestParamInfo<int>& lanes) { return std::to_string(lanes.param) + "lanes"; });

}  // namespace
}  // namespace forge::quant
