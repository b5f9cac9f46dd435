// MLX-converted fixtures are the HF models with the zero-centered gains stored as bf16(1 + w) (spec §3.2,
// pitfall 21), conv taps moved, experts stacked and names changed. So the decoder over an MLX fixture must
// compute *exactly* what it computes over the HF fixture once those gains are rounded to bf16 — a bitwise
// check that every MLX name, layout and norm group (including the "mixed" checkpoint, whose MTP layer norms
// were left raw) is read as intended.
#include <gtest/gtest.h>

#include <cstring>

#include "forge/base/half.h"
#include "tests/st/test_files.h"
#include "tests/verify/reference_helpers.h"

namespace forge::testing {
namespace {

using verify::model::Decoder;
using verify::model::ForwardOutput;
using verify::model::LogitsFor;
using verify::model::ModelWeights;
using verify::model::MtpHead;

void RoundToBf16(std::vector<float>& v) {
  for (float& x : v) x = Bf16ToF32(F32ToBf16(x));
}

void RoundLayerGains(verify::model::LayerWeights& L) {
  RoundToBf16(L.input_norm);
  RoundToBf16(L.post_norm);
  if (L.full_attention) {
    RoundToBf16(L.attn.q_norm);
    RoundToBf16(L.attn.k_norm);
  }
}

// What an MLX converter that adds 1 in f32 and stores bf16 produces, group by group.
void RoundGains(ModelWeights& w, bool mtp_layers) {
  RoundToBf16(w.final_norm);
  for (auto& L : w.layers) RoundLayerGains(L);
  if (!w.has_mtp) return;
  RoundToBf16(w.mtp.norm);
  RoundToBf16(w.mtp.pre_fc_norm_embedding);
  RoundToBf16(w.mtp.pre_fc_norm_hidden);
  if (mtp_layers) {
    for (auto& L : w.mtp.layers) RoundLayerGains(L);
  }
}

struct Pair {
  std::string mlx, hf, reference;
  bool mtp_layers_shifted;
};

class MlxLayout : public ::testing::TestWithParam<Pair> {};

TEST_P(MlxLayout, SameComputationAsHfWithBf16Gains) {
  const Pair& p = GetParam();
  LoadedModel mlx = LoadModel(FixturePath(p.mlx));
  LoadedModel hf = LoadModel(FixturePath(p.hf));
  ASSERT_TRUE(mlx.weights && hf.weights);
  ASSERT_EQ(mlx.weights->format, "mlx");
  RoundGains(*hf.weights, p.mtp_layers_shifted);
  const ReferenceCase ref = LoadReference(p.reference)[0];
  const std::vector<int64_t> seq = ref.sequence();
  ForwardOutput a, b;
  {
    Decoder d(*mlx.weights, nullptr);
    auto st = d.NewState();
    d.Forward(seq, st, LogitsFor::kAll, a);
  }
  {
    Decoder d(*hf.weights, nullptr);
    auto st = d.NewState();
    d.Forward(seq, st, LogitsFor::kAll, b);
  }
  ASSERT_EQ(a.logits.data.size(), b.logits.data.size());
  EXPECT_EQ(0, std::memcmp(a.logits.data.data(), b.logits.data.data(), a.logits.data.size() * sizeof(float)));
  ASSERT_TRUE(mlx.weights->has_mtp && hf.weights->has_mtp);
  verify::model::MtpOutput ma, mb;
  verify::model::Rows h(a.post_norm.n - 1, a.post_norm.width);
  std::copy(a.post_norm.data.begin(), a.post_norm.data.end() - a.post_norm.width, h.data.begin());
  const std::vector<int64_t> next(seq.begin() + 1, seq.end());
  {
    MtpHead m(*mlx.weights, nullptr);
    auto ms = m.NewState();
    m.Forward(h, next, 0, ms, ma);
  }
  {
    MtpHead m(*hf.weights, nullptr);
    auto ms = m.NewState();
    m.Forward(h, next, 0, ms, mb);
  }
  EXPECT_EQ(0,
            std::memcmp(ma.logits.data.data(), mb.logits.data.data(), ma.logits.data.size() * sizeof(float)));
}

TEST(MlxLayout, UnroundedGainsWouldDiffer) {  // the comparison above is sensitive to the rounding it models
  LoadedModel mlx = LoadModel(FixturePath("dense-vlm-mlx"));
  LoadedModel hf = LoadModel(FixturePath("dense-vlm-hf"));
  ASSERT_TRUE(mlx.weights && hf.weights);
  EXPECT_NE(mlx.weights->final_norm, hf.weights->final_norm);
  RoundGains(*hf.weights, true);
  EXPECT_EQ(mlx.weights->final_norm, hf.weights->final_norm);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MlxLayout,
                         ::testing::Values(Pair{"dense-vlm-mlx", "dense-vlm-hf", "dense-vlm-hf", true},
                                           Pair{"moe-vlm-mlx", "moe-vlm-hf", "moe-vlm-hf", true},
                                           Pair{"moe36-vlm-mlx", "moe36-vlm-hf", "moe-vlm-hf", true},
                                           Pair{"moe-vlm-mlx-mixed", "moe-vlm-hf", "moe-vlm-hf", false}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.mlx;
                           for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });

}  // namespace
}  // namespace forge::testing
