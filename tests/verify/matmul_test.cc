// The decoder's matrix kernels against the codec: the fused affine kernels (scale * dot(q, x) + bias *
// sum(x)), the AVX-512 and AVX2 ones where the CPU has them and the portable one, must agree with dequantize-then-dot
// to f32 rounding, for 4 and 8 bits and group sizes 32, 64, 128; every kernel gives a token the same bits
// alone, in a batch (1, 2 and 4-token paths), and with any thread split.
#include "verify/model/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "forge/base/half.h"
#include "verify/model/affine_rows.h"

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

class Kernels : public ::testing::TestWithParam<std::tuple<KernelCase, verify::model::AffineKernel>> {
 protected:
  void SetUp() override {
    if (!verify::model::AffineKernelRuns(std::get<1>(GetParam()))) GTEST_SKIP() << "this CPU cannot run it";
    verify::model::SetAffineKernel(std::get<1>(GetParam()));
  }
  void TearDown() override { verify::model::SetAffineKernel(verify::model::AffineKernel::kBest); }
};

TEST_P(Kernels, AgreeWithDequantizeThenDotAndAreBatchInvariant) {
  const KernelCase c = std::get<0>(GetParam());
  const int64_t rows = 512, cols = 384;  // large enough for MatMul to split rows over the pool
  Owned w = MakeMatrix(c.mode, c.bits, c.group, rows, cols, 7);
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  constexpr int kTokens = 7;  // a batch runs the 4-, 2- and 1-token paths
  std::vector<std::vector<float>> x(kTokens, std::vector<float>(cols));
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
  // A batch on 3 threads vs one token at a time: identical bits.
  ThreadPool pool(3);
  std::vector<std::vector<float>> batched(kTokens, std::vector<float>(rows)),
      single(kTokens, std::vector<float>(rows));
  std::vector<const float*> xs;
  std::vector<float*> ys;
  for (int t = 0; t < kTokens; ++t) xs.push_back(x[t].data()), ys.push_back(batched[t].data());
  MatMul(&pool).Run(w.m, xs, ys);
  for (int t = 0; t < kTokens; ++t) MatMul(nullptr).Run(w.m, x[t].data(), single[t].data());
  for (int t = 0; t < kTokens; ++t)
    EXPECT_EQ(0, std::memcmp(batched[t].data(), single[t].data(), rows * sizeof(float))) << t;
}

INSTANTIATE_TEST_SUITE_P(Storage, Kernels,
                         ::testing::Combine(::testing::Values(KernelCase{quant::QuantMode::kAffine, 16, 0},
                                                              KernelCase{quant::QuantMode::kAffine, 4, 64},
                                                              KernelCase{quant::QuantMode::kAffine, 4, 32},
                                                              KernelCase{quant::QuantMode::kAffine, 4, 128},
                                                              KernelCase{quant::QuantMode::kAffine, 8, 32},
                                                              KernelCase{quant::QuantMode::kAffine, 8, 64},
                                                              KernelCase{quant::QuantMode::kAffine, 3, 64},
                                                              KernelCase{quant::QuantMode::kMxfp4, 4, 32},
                                                              KernelCase{quant::QuantMode::kNvfp4, 4, 16}),
                                            ::testing::Values(verify::model::AffineKernel::kAvx512,
                                                              verify::model::AffineKernel::kAvx2,
                                                              verify::model::AffineKernel::kPortable)),
                         [](const auto& param_info) {  // e.g. affine4_g64_avx2
                           const KernelCase c = std::get<0>(param_info.param);
                           const char* mode = c.mode == quant::QuantMode::kAffine  ? "affine"
                                              : c.mode == quant::QuantMode::kMxfp4 ? "mxfp"
                                                                                    : "nvfp";
                           return std::string(mode) + std::to_string(c.bits) + "_g" + std::to_string(c.group) +
                                  "_" + verify::model::AffineKernelName(std::get<1>(param_info.param));
                         });

// A group of products (the decoder's q/k/v, gate/up, a verify pass's experts with different tokens each)
// runs in one parallel region: every product's results must be the bits it gives alone, one token at a
// time, whatever the pool; a product with no tokens is skipped.
TEST(MatMulGroup, EveryProductGivesWhatItGivesAlone) {
  Owned a = MakeMatrix(quant::QuantMode::kAffine, 4, 64, 300, 256, 21);
  Owned b = MakeMatrix(quant::QuantMode::kAffine, 8, 32, 97, 256, 22);
  Owned c = MakeMatrix(quant::QuantMode::kAffine, 16, 0, 1000, 128, 23);
  Owned d = MakeMatrix(quant::QuantMode::kMxfp4, 4, 32, 64, 256, 24);
  std::mt19937 rng(9);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<std::vector<float>> x(5, std::vector<float>(256));
  for (auto& v : x)
    for (float& f : v) f = n(rng);
  struct Case {
    const Matrix* w;
    std::vector<int> tokens;
  };
  const std::vector<Case> cases = {
      {&a.m, {0, 1, 2}}, {&b.m, {3}}, {&c.m, {4, 0}}, {&d.m, {1, 2, 3, 4}}, {&a.m, {}}};
  for (unsigned threads : {1u, 2u, 3u}) {
    ThreadPool pool(threads);
    std::vector<std::vector<std::vector<float>>> got(cases.size());
    std::vector<verify::model::Product> group;
    for (size_t i = 0; i < cases.size(); ++i) {
      verify::model::Product p{cases[i].w, {}, {}};
      got[i].assign(cases[i].tokens.size(), std::vector<float>(static_cast<size_t>(cases[i].w->rows())));
      for (size_t t = 0; t < cases[i].tokens.size(); ++t) {
        p.xs.push_back(x[cases[i].tokens[t]].data());
        p.ys.push_back(got[i][t].data());
      }
      group.push_back(std::move(p));
    }
    MatMul(&pool).RunGroup(group);
    for (size_t i = 0; i < cases.size(); ++i) {
      for (size_t t = 0; t < cases[i].tokens.size(); ++t) {
        std::vector<float> alone(static_cast<size_t>(cases[i].w->rows()));
        MatMul(nullptr).Run(*cases[i].w, x[cases[i].tokens[t]].data(), alone.data());
        EXPECT_EQ(0, std::memcmp(alone.data(), got[i][t].data(), alone.size() * sizeof(float)))
            << "product " << i << " token " << t << " threads " << threads;
      }
    }
  }
}

// Where the CPU has AVX2 or AVX-512 the affine kernels are different code: each must agree with the
// portable one to f32 rounding (each is also checked against the codec above), for 4 and 8 bits.
TEST(AffineKernels, EachAgreesWithThePortableOne) {
  using verify::model::AffineKernel;
  int compared = 0;
  for (AffineKernel k : {AffineKernel::kAvx2, AffineKernel::kAvx512}) {
    if (!verify::model::AffineKernelRuns(k)) continue;
    for (int bits : {4, 8}) {
      Owned w = MakeMatrix(quant::QuantMode::kAffine, bits, 64, 64, 512, 11);
      std::vector<float> x(512), fast(64), portable(64);
      std::mt19937 rng(5);
      std::normal_distribution<float> n(0.0f, 1.0f);
      for (float& f : x) f = n(rng);
      verify::model::SetAffineKernel(k);
      MatMul(nullptr).Run(w.m, x.data(), fast.data());
      verify::model::SetAffineKernel(AffineKernel::kPortable);
      MatMul(nullptr).Run(w.m, x.data(), portable.data());
      verify::model::SetAffineKernel(AffineKernel::kBest);
      for (int r = 0; r < 64; ++r)
        EXPECT_NEAR(fast[r], portable[r], 1e-4f * (1 + std::fabs(portable[r])))
            << verify::model::AffineKernelName(k) << " bits " << bits << " row " << r;
      ++compared;
    }
  }
  if (compared == 0) GTEST_SKIP() << "no AVX2 or AVX-512 here: one kernel only";
}

}  // namespace
}  // namespace forge::testing
