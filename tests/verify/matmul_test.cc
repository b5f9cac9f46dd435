// The decoder's matrix kernels against the codec: a fused affine kernel (scale * dot(q, x) + bias * sum(x))
// must agree with dequantize-then-dot to f32 rounding, for 4 and 8 bits; every kernel gives a token the same
// bits alone, in a batch, and with any thread split.
#include "verify/model/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "forge/base/half.h"

namespace forge::testing {
namespace {

using verify::model::MatMul;
using verify::model::Matrix;

struct Owned {
  std::vector<uint8_t> packed, scales, biases, bf16;
  Matrix m;
};

Owned MakeMatrix(quant::QuantMode mode, int bits, int group, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 0.05f);
  Owned o;
  o.bf16.resize(static_cast<size_t>(rows * cols * 2));
  for (int64_t i = 0; i < rows * cols; ++i) {
    const uint16_t h = F32ToBf16(n(rng));
    std::memcpy(o.bf16.data() + 2 * i, &h, 2);
  }
  if (bits == 16) {
    o.m = Matrix::Float("w", DType::kBF16, o.bf16.data(), rows, cols);
    return o;
  }
  quant::QuantParams p{mode, bits, group};
  o.packed.resize(static_cast<size_t>(rows * cols * bits / 8));
  const DType sd = quant::ScalesDType(p, DType::kBF16);
  const size_t groups = static_cast<size_t>(rows * cols / group);
  o.scales.resize(groups * static_cast<size_t>(DTypeBits(sd) / 8));
  o.biases.resize(o.scales.size());
  quant::QuantizeRows(p, quant::Rules::kMlxCpu, DType::kBF16, o.bf16.data(), static_cast<uint64_t>(rows),
                      static_cast<uint64_t>(cols), o.packed.data(), o.scales.data(), o.biases.data());
  Matrix::Quantized q{p, sd, o.scales.data(), quant::HasBiases(p) ? o.biases.data() : nullptr};
  o.m = Matrix::Packed("w", o.packed.data(), q, rows, cols);
  return o;
}

struct KernelCase {
  quant::QuantMode mode;
  int bits, group;
};

class Kernels : public ::testing::TestWithParam<KernelCase> {};

TEST_P(Kernels, AgreeWithDequantizeThenDotAndAreBatchInvariant) {
  const KernelCase c = GetParam();
  const int64_t rows = 512, cols = 256;  // large enough for MatMul to split rows over the pool
  Owned w = MakeMatrix(c.mode, c.bits, c.group, rows, cols, 7);
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<std::vector<float>> x(3, std::vector<float>(cols));
  for (auto& v : x)
    for (float& f : v) f = n(rng);
  // Reference: rows through Matrix::Row (the codec's dequantization), dot in double.
  std::vector<float> row(cols);
  for (int t = 0; t < 3; ++t) {
    std::vector<float> y(rows);
    MatMul(nullptr).Run(w.m, x[t].data(), y.data());
    for (int64_t r = 0; r < rows; ++r) {
      w.m.Row(r, row.data());
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < cols; ++i)
        ref += static_cast<double>(row[i]) * x[t][i], mag += std::fabs(row[i] * x[t][i]);
      // The codec rounds dequantized values to bf16 (MLX's dequantize); the fused kernel does not.
      EXPECT_NEAR(y[r], ref, 1e-5 * mag + 4e-3 * mag * (c.bits < 16 && c.mode == quant::QuantMode::kAffine))
          << r;
    }
  }
  // Batch of 3 on 3 threads vs one token at a time: identical bits.
  ThreadPool pool(3);
  std::vector<std::vector<float>> batched(3, std::vector<float>(rows)), single(3, std::vector<float>(rows));
  MatMul(&pool).Run(w.m, {x[0].data(), x[1].data(), x[2].data()},
                    {batched[0].data(), batched[1].data(), batched[2].data()});
  for (int t = 0; t < 3; ++t) MatMul(nullptr).Run(w.m, x[t].data(), single[t].data());
  for (int t = 0; t < 3; ++t)
    EXPECT_EQ(0, std::memcmp(batched[t].data(), single[t].data(), rows * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(Storage, Kernels,
                         ::testing::Values(KernelCase{quant::QuantMode::kAffine, 16, 0},
                                           KernelCase{quant::QuantMode::kAffine, 4, 64},
                                           KernelCase{quant::QuantMode::kAffine, 8, 32},
                                           KernelCase{quant::QuantMode::kAffine, 3, 64},
                                           KernelCase{quant::QuantMode::kMxfp4, 4, 32},
                                           KernelCase{quant::QuantMode::kNvfp4, 4, 16}));

}  // namespace
}  // namespace forge::testing
