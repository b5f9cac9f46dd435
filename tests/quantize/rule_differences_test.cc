// One hand-made case per documented difference between MLX's CPU and Metal quantizers
// (docs MLX_QUANT_FORMATS.md §7). Expected values are worked out by hand in the comments.
#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "forge/base/half.h"
#include "quantize/bitpack.h"
#include "quantize/codec.h"
#include "quantize/fp_formats.h"

namespace forge::quant {
namespace {

struct Out {
  std::vector<uint32_t> codes;
  std::vector<uint8_t> scales, biases;
};

Out Quantize(const QuantParams& p, Rules rules, DType dtype, const std::vector<float>& values) {
  const uint64_t k = values.size();
  std::vector<uint8_t> in(k * DTypeBits(dtype) / 8);
  for (uint64_t i = 0; i < k; ++i) {
    if (dtype == DType::kF32) std::memcpy(in.data() + 4 * i, &values[i], 4);
    else { uint16_t h = F32ToBf16(values[i]); std::memcpy(in.data() + 2 * i, &h, 2); }
  }
  const DType sdt = ScalesDType(p, dtype);
  std::vector<uint8_t> packed(k * p.bits / 8);
  Out o;
  o.scales.resize(k / p.group_size * DTypeBits(sdt) / 8);
  o.biases.resize(o.scales.size());
  QuantizeRows(p, rules, dtype, in.data(), 1, k, packed.data(), o.scales.data(), o.biases.data());
  for (uint64_t i = 0; i < k; ++i) o.codes.push_back(UnpackCode(packed.data(), i, p.bits));
  return o;
}

float F32At(const std::vector<uint8_t>& b, int i) {
  float f;
  std::memcpy(&f, b.data() + 4 * i, 4);
  return f;
}

std::vector<float> Group(int n, std::initializer_list<float> head) {
  std::vector<float> v(head);
  v.resize(n, 0.0f);
  return v;
}

TEST(RuleDifferences, AffineTiesHalfEvenOnCpuHalfAwayOnGpu) {
  // bits 2 (n = 3), group [3, 0.5, 0, ...]: anchor hi = 3, step -1, k = -3, scale -1, bias 3;
  // code(0.5) = (0.5 - 3) / -1 = 2.5: CPU 2 (even), GPU 3 (away from zero).
  auto g = Group(32, {3.0f, 0.5f});
  QuantParams p{QuantMode::kAffine, 2, 32};
  EXPECT_EQ(Quantize(p, Rules::kMlxCpu, DType::kF32, g).codes[1], 2u);
  EXPECT_EQ(Quantize(p, Rules::kMlxGpu, DType::kF32, g).codes[1], 3u);
}

TEST(RuleDifferences, AffineAllNegativeGroupSpansToZeroOnGpu) {
  // [-2, -1, -1, ...], 4 bits. CPU: range [-2, -1], step 1/15, k = -30, scale 1/15. GPU: max starts at 0, range
  // [-2, 0], step 2/15, k = -15, scale 2/15. Bias -2 on both.
  auto g = Group(32, {-2.0f});
  for (size_t i = 1; i < g.size(); ++i) g[i] = -1.0f;
  QuantParams p{QuantMode::kAffine, 4, 32};
  Out cpu = Quantize(p, Rules::kMlxCpu, DType::kF32, g), gpu = Quantize(p, Rules::kMlxGpu, DType::kF32, g);
  EXPECT_FLOAT_EQ(F32At(cpu.scales, 0), -2.0f / -30.0f);
  EXPECT_FLOAT_EQ(F32At(gpu.scales, 0), -2.0f / -15.0f);
  EXPECT_EQ(F32At(cpu.biases, 0), -2.0f);
  EXPECT_EQ(F32At(gpu.biases, 0), -2.0f);
  EXPECT_EQ(cpu.codes[1], 15u);  // -1 is the top of the CPU range
  EXPECT_EQ(gpu.codes[1], 7u);   // f32(2/15) rounds up, so 1 / scale = 7.4999996 -> 7
}

TEST(RuleDifferences, MxZeroGroupScaleByte) {
  // All zeros: CPU e = 0 -> byte 127; GPU log2(0) = -inf saturates and clamps to -127 -> byte 0.
  QuantParams p{QuantMode::kMxfp4, 4, 32};
  auto z = Group(32, {});
  EXPECT_EQ(Quantize(p, Rules::kMlxCpu, DType::kF32, z).scales[0], 127);
  EXPECT_EQ(Quantize(p, Rules::kMlxGpu, DType::kF32, z).scales[0], 0);
}

TEST(RuleDifferences, MxExponentWrapsOnCpuClampsOnGpu) {
  // f32 group max 1e-40, mxfp8: s = 1e-40 / 448 = 2.2e-43, log2 = -141.7 -> e = -142: CPU byte (-142 + 127) mod
  // 256 = 241 (the formats doc reports 241 for this row); GPU clamps e to -127: byte 0.
  QuantParams p{QuantMode::kMxfp8, 8, 32};
  auto g = Group(32, {1e-40f});
  EXPECT_EQ(Quantize(p, Rules::kMlxCpu, DType::kF32, g).scales[0], 241);
  EXPECT_EQ(Quantize(p, Rules::kMlxGpu, DType::kF32, g).scales[0], 0);
}

TEST(RuleDifferences, MxExponentRoundingAndPrecision) {
  // bf16 group with max 136 (mxfp4). CPU, in bf16: s = bf16(136/6) = 22.625, log2 = 4.49985 -> bf16 4.5 -> half to
  // even 4 -> byte 131. GPU, in f32: s = 22.6667, log2 = 4.5025 -> 5 -> byte 132.
  QuantParams p{QuantMode::kMxfp4, 4, 32};
  auto g = Group(32, {136.0f});
  EXPECT_EQ(Quantize(p, Rules::kMlxCpu, DType::kBF16, g).scales[0], 131);
  EXPECT_EQ(Quantize(p, Rules::kMlxGpu, DType::kBF16, g).scales[0], 132);
}

TEST(RuleDifferences, E2M1SignOfZeroAndTies) {
  // Group max 6 -> scale 1. x = -0.1: CPU nearest entry index 0 (+0, first of the tie with -0); GPU keeps the
  // sign: 0x8. x = 0.75: CPU first nearest is 0.5 (code 1); GPU ties to even: 1.0 (code 2). 1.75: CPU 1.5 (3),
  // GPU 2 (4). 3.5: CPU 3 (5), GPU 4 (6). 2.5 -> 2 (4) on both.
  QuantParams p{QuantMode::kMxfp4, 4, 32};
  auto g = Group(32, {6.0f, -0.1f, 0.75f, 1.75f, 3.5f, 2.5f});
  Out cpu = Quantize(p, Rules::kMlxCpu, DType::kF32, g), gpu = Quantize(p, Rules::kMlxGpu, DType::kF32, g);
  ASSERT_EQ(cpu.scales[0], 127);
  ASSERT_EQ(gpu.scales[0], 127);
  EXPECT_EQ(cpu.codes[1], 0x0u);
  EXPECT_EQ(gpu.codes[1], 0x8u);
  EXPECT_EQ(cpu.codes[2], 1u);
  EXPECT_EQ(gpu.codes[2], 2u);
  EXPECT_EQ(cpu.codes[3], 3u);
  EXPECT_EQ(gpu.codes[3], 4u);
  EXPECT_EQ(cpu.codes[4], 5u);
  EXPECT_EQ(gpu.codes[4], 6u);
  EXPECT_EQ(cpu.codes[5], 4u);
  EXPECT_EQ(gpu.codes[5], 4u);
}

TEST(RuleDifferences, Nvfp4FlushedGroupKeepsSignOnGpu) {
  // max 0.005 <= 6 * 2^-10: scale E4M3(0.000833) = 0 on both. CPU: w / 0 = inf, every distance equal, code 0.
  // GPU: r = 0, x = w * 0 = -0 for negative w: code 0x8.
  QuantParams p{QuantMode::kNvfp4, 4, 16};
  auto g = Group(16, {0.005f, -0.004f});
  Out cpu = Quantize(p, Rules::kMlxCpu, DType::kF32, g), gpu = Quantize(p, Rules::kMlxGpu, DType::kF32, g);
  EXPECT_EQ(cpu.scales[0], 0);
  EXPECT_EQ(gpu.scales[0], 0);
  EXPECT_EQ(cpu.codes[1], 0x0u);
  EXPECT_EQ(gpu.codes[1], 0x8u);
}

TEST(RuleDifferences, Nvfp4HugeValuesLostOnCpu) {
  // max 1e30: scale saturates at 448; x = 1e30 / 448 = 2.2e27 >= 2^27: every CPU distance rounds to the same
  // float, the first index (code 0) wins; the GPU saturates to 6 (code 7).
  QuantParams p{QuantMode::kNvfp4, 4, 16};
  auto g = Group(16, {1e30f});
  Out cpu = Quantize(p, Rules::kMlxCpu, DType::kF32, g), gpu = Quantize(p, Rules::kMlxGpu, DType::kF32, g);
  EXPECT_EQ(cpu.scales[0], 0x7E);
  EXPECT_EQ(gpu.scales[0], 0x7E);
  EXPECT_EQ(cpu.codes[0], 0u);
  EXPECT_EQ(gpu.codes[0], 7u);
}

TEST(Formats, E4M3EncodeDecodeExhaustive) {
  // Every finite E4M3 value encodes back to its own byte (0x7F/0xFF excluded: the encoder never emits them).
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7F) == 0x7F) continue;
    EXPECT_EQ(E4M3Encode(E4M3DecodeMlx(static_cast<uint8_t>(b))), b) << b;
  }
  EXPECT_EQ(E4M3DecodeMlx(0x7F), 480.0f);
  EXPECT_EQ(E4M3Encode(463.9f), 0x7E);
  EXPECT_EQ(E4M3Encode(464.0f), 0x7E);
  EXPECT_EQ(E4M3Encode(std::nanf("")), 0x7E);
  EXPECT_EQ(E4M3Encode(-0.0f), 0x80);
  EXPECT_EQ(E4M3Encode(std::ldexp(1.0f, -10)), 0x00);  // tie between 0 and 2^-9 -> even (0)
  EXPECT_EQ(E4M3Encode(3 * std::ldexp(1.0f, -10)), 0x02);
}

TEST(Formats, Mxfp4TableValuesRoundTripAndZerosStayZero) {
  // Inputs drawn from the E2M1 table with group max 6 (scale 1) quantize exactly (MLX's own property test).
  QuantParams p{QuantMode::kMxfp4, 4, 32};
  std::vector<float> g;
  for (int i = 0; i < 32; ++i) g.push_back(kE2M1Table[i % 16] == 0.0f ? 0.0f : kE2M1Table[i % 16]);
  g[7] = 6.0f;
  for (Rules r : {Rules::kMlxCpu, Rules::kMlxGpu}) {
    Out o = Quantize(p, r, DType::kF32, g);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(kE2M1Table[o.codes[i]], g[i]) << i;
  }
}

TEST(Params, MlxValidationRules) {
  EXPECT_TRUE(ValidateParams({QuantMode::kAffine, 3, 128}).ok());
  EXPECT_FALSE(ValidateParams({QuantMode::kAffine, 7, 64}).ok());
  EXPECT_FALSE(ValidateParams({QuantMode::kAffine, 4, 16}).ok());
  EXPECT_FALSE(ValidateParams({QuantMode::kMxfp4, 4, 64}).ok());
  EXPECT_FALSE(ValidateParams({QuantMode::kMxfp8, 4, 32}).ok());
  EXPECT_FALSE(ValidateParams({QuantMode::kNvfp4, 4, 32}).ok());
  EXPECT_EQ(ValidateParams({QuantMode::kNvfp4, 8, 16}).code(), ExitCode::kUsage);
}

}  // namespace
}  // namespace forge::quant
