// Transforms checked against an independent implementation: scripts/make_mlx_reference.py (PyTorch) made
// the *-mlx fixtures from the *-hf ones with the spec's conversion rules. Each forge transform applied to
// the HF tensor must give exactly the bytes PyTorch produced.
#include "forge/plan/evaluate.h"
#include "forge/plan/evaluate_range.h"

#include <cstring>

#include <gtest/gtest.h>

#include "tests/st/test_files.h"

namespace forge::plan {
namespace {
using testing::FixturePath;

class AgainstPytorch : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = Checkpoint::Open(FixturePath("moe-vlm-hf"));
    auto m = Checkpoint::Open(FixturePath("moe-vlm-mlx"));
    ASSERT_TRUE(h.ok() && m.ok());
    hf_ = std::move(h).value();
    mlx_ = std::move(m).value();
  }
  ExprPtr Src(const std::string& name) {
    auto ref = hf_->Find(name);
    EXPECT_TRUE(ref.has_value()) << name;
    return Source(*ref).value();
  }
  void ExpectEqualsMlx(const Result<ExprPtr>& e, const std::string& mlx_name) {
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    auto want = mlx_->Find(mlx_name);
    ASSERT_TRUE(want.has_value()) << mlx_name;
    auto got = Evaluate(**e);
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->meta.shape, want->info->shape) << mlx_name;
    ASSERT_EQ(got->meta.dtype, want->info->dtype);
    EXPECT_EQ(0, std::memcmp(got->data, want->file->Data(*want->info), want->info->nbytes())) << mlx_name;
    ExpectRangesEqual(**e, want->file->Data(*want->info), mlx_name);
  }
  // The same bytes assembled from range evaluations (as the writer streams big tensors): pieces of one
  // granule, of three, and the whole; an expression that cannot split is evaluated whole and cut.
  static void ExpectRangesEqual(const Expr& e, const uint8_t* want, const std::string& what) {
    const uint64_t n = e.meta.numel(), es = DTypeBits(e.meta.dtype) / 8, g = SplitGranule(e);
    for (uint64_t step : {g == 0 ? n / 3 + 1 : g, 3 * std::max<uint64_t>(g, 1), n}) {
      std::vector<uint8_t> assembled;
      for (uint64_t b = 0; b < n; b += step) {
        std::vector<SourceSpan> read;
        auto part = EvaluateRange(e, b, std::min(n, b + step), &read);
        ASSERT_TRUE(part.ok()) << part.status().ToString();
        EXPECT_FALSE(read.empty());
        assembled.insert(assembled.end(), part->data, part->data + part->meta.nbytes());
      }
      ASSERT_EQ(assembled.size(), n * es) << what;
      EXPECT_EQ(0, std::memcmp(assembled.data(), want, n * es)) << what << " in pieces of " << step;
    }
  }
  std::unique_ptr<Checkpoint> hf_, mlx_;
};

TEST_F(AgainstPytorch, WhatSplits) {
  auto fused = Src("model.language_model.layers.2.mlp.experts.gate_up_proj");  // [E, 2I, H]
  const uint64_t i2 = fused->meta.shape[1], h = fused->meta.shape[2];
  EXPECT_EQ(SplitGranule(*fused), 1u);
  EXPECT_EQ(SplitGranule(*Slice(fused, 1, 0, i2 / 2).value()), i2 / 2 * h);  // one expert's half
  EXPECT_EQ(SplitGranule(*Slice(fused, 0, 1, 2).value()), 1u);
  EXPECT_EQ(SplitGranule(*MoveAxis(fused, 2, 1).value()), i2 * h);  // behind the leading axis
  EXPECT_EQ(SplitGranule(*MoveAxis(fused, 0, 2).value()), 0u);      // across it: whole
}

// Any range, aligned to the granule or not: graft's fit check samples the first rows of every trunk matrix,
// which at Qwen3.5-35B-A3B's size (a switch_mlp half [256, 512, 2048], 32 rows = 65,536 elements against
// a granule of 1,048,576) cut through an expert's block, and the slice evaluated an empty range (a null
// pointer read: graft crashed on every real MoE checkpoint).
TEST_F(AgainstPytorch, RangesNotAlignedToTheGranule) {
  auto fused = Src("model.language_model.layers.2.mlp.experts.gate_up_proj");  // [E, 2I, H]
  const uint64_t i2 = fused->meta.shape[1], h = fused->meta.shape[2];
  for (const ExprPtr& e : {Slice(fused, 1, 0, i2 / 2).value(), Slice(fused, 1, i2 / 2, i2).value(),
                           MoveAxis(fused, 2, 1).value(), Cast(Slice(fused, 1, 0, i2 / 2).value(), DType::kF32).value()}) {
    auto whole = Evaluate(*e);
    ASSERT_TRUE(whole.ok());
    const uint64_t n = e->meta.numel(), g = SplitGranule(*e), es = DTypeBits(e->meta.dtype) / 8;
    ASSERT_GT(g, 1u);
    for (auto [b, en] : std::vector<std::pair<uint64_t, uint64_t>>{
             {0, 16 * h}, {0, 7}, {5, g + 3}, {g - 1, 2 * g + 1}, {n - 5, n}, {3, 3}, {g, 2 * g}}) {
      auto part = EvaluateRange(*e, b, en);
      ASSERT_TRUE(part.ok()) << part.status().ToString();
      ASSERT_EQ(part->meta.numel(), en - b);
      if (en > b) {
        ASSERT_NE(part->data, nullptr);
        EXPECT_EQ(0, std::memcmp(part->data, whole->data + b * es, (en - b) * es)) << "[" << b << ", " << en << ")";
      }
    }
    EXPECT_FALSE(EvaluateRange(*e, 0, n + 1).ok());
  }
}

TEST_F(AgainstPytorch, Conv1dMoveAxis) {
  ExpectEqualsMlx(MoveAxis(Src("model.language_model.layers.1.linear_attn.conv1d.weight"), 2, 1),
                  "language_model.model.layers.1.linear_attn.conv1d.weight");
}

TEST_F(AgainstPytorch, PatchEmbedChannelsLast) {
  ExpectEqualsMlx(MoveAxis(Src("model.visual.patch_embed.proj.weight"), 1, 4), "vision_tower.patch_embed.proj.weight");
}

TEST_F(AgainstPytorch, FusedGateUpSplitGateRowsFirst) {
  auto fused = Src("model.language_model.layers.2.mlp.experts.gate_up_proj");
  const uint64_t ie = fused->meta.shape[1] / 2;
  ExpectEqualsMlx(Slice(fused, 1, 0, ie), "language_model.model.layers.2.mlp.switch_mlp.gate_proj.weight");
  ExpectEqualsMlx(Slice(fused, 1, ie, 2 * ie), "language_model.model.layers.2.mlp.switch_mlp.up_proj.weight");
}

TEST_F(AgainstPytorch, PerExpertStack) {
  for (const char* proj : {"gate", "up", "down"}) {
    std::vector<ExprPtr> parts;
    for (int e = 0; e < 4; ++e) parts.push_back(Src("mtp.layers.0.mlp.experts." + std::to_string(e) + "." + proj + "_proj.weight"));
    ExpectEqualsMlx(Stack(parts), std::string("language_model.mtp.layers.0.mlp.switch_mlp.") + proj + "_proj.weight");
  }
}

TEST_F(AgainstPytorch, NormShiftInF32RoundedOnce) {
  for (const char* n : {"layers.0.input_layernorm.weight", "layers.3.self_attn.q_norm.weight", "norm.weight"}) {
    auto src = Src(std::string("model.language_model.") + n);
    ExpectEqualsMlx(AddConstant(src, 1.0, src->meta.dtype), std::string("language_model.model.") + n);
  }
  auto pre = Src("mtp.pre_fc_norm_hidden.weight");
  ExpectEqualsMlx(AddConstant(pre, 1.0, DType::kBF16), "language_model.mtp.pre_fc_norm_hidden.weight");
}

TEST(Evaluate, CastRoundTripAndReshapeView) {
  auto ckpt = Checkpoint::Open(FixturePath("dense-vlm-hf"));
  ASSERT_TRUE(ckpt.ok());
  auto src = Source(*(*ckpt)->Find("model.language_model.embed_tokens.weight")).value();
  auto back = Cast(Cast(src, DType::kF32).value(), DType::kBF16).value();
  auto a = Evaluate(*src), b = Evaluate(*back);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(0, std::memcmp(a->data, b->data, a->meta.nbytes()));  // bf16 -> f32 -> bf16 is exact
  auto r = Reshape(src, {320 * 64});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Evaluate(**r)->data, a->data);  // no copy
  EXPECT_FALSE(Reshape(src, {7}).ok());
  EXPECT_FALSE(Slice(src, 0, 10, 400).ok());
  EXPECT_FALSE(Cast(Source(*(*ckpt)->Find("model.language_model.embed_tokens.weight")).value(), DType::kU8).ok());
}

TEST(Evaluate, MoveAxisMatchesIndexArithmetic) {
  // 2x3x4 float tensor with value = index; moveaxis(0 -> 2) gives out[j][k][i] = in[i][j][k].
  std::vector<float> v(24);
  for (int i = 0; i < 24; ++i) v[i] = static_cast<float>(i);
  testing::TempDir t;
  std::string header = R"({"x":{"dtype":"F32","shape":[2,3,4],"data_offsets":[0,96]}})";
  std::string bytes = testing::SafetensorsBytes(header, 0);
  bytes.append(reinterpret_cast<const char*>(v.data()), 96);
  testing::WriteFile(t.Sub("x.safetensors"), bytes);
  auto ckpt = Checkpoint::Open(t.Sub("x.safetensors"));
  ASSERT_TRUE(ckpt.ok());
  auto e = MoveAxis(Source(*(*ckpt)->Find("x")).value(), 0, 2);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->meta.shape, (Shape{3, 4, 2}));
  auto out = Evaluate(**e);
  ASSERT_TRUE(out.ok());
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) EXPECT_EQ(LoadAsF32(DType::kF32, out->data, (j * 4 + k) * 2 + i), v[i * 12 + j * 4 + k]);
}

}  // namespace
}  // namespace forge::plan
