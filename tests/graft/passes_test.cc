// Each pass on its own: idempotence, inverses, and what it must leave alone.
#include <cstring>

#include <gtest/gtest.h>

#include "forge/plan/evaluate.h"
#include "graft/cast_pass.h"
#include "graft/expert_passes.h"
#include "graft/layout_passes.h"
#include "graft/norm_shift_pass.h"
#include "graft/rename_pass.h"
#include "tests/st/test_files.h"

namespace forge::graft {
namespace {
using testing::FixturePath;

plan::Plan Load(const std::string& fixture, std::unique_ptr<Checkpoint>* keep) {
  auto c = Checkpoint::Open(FixturePath(fixture));
  EXPECT_TRUE(c.ok());
  *keep = std::move(c).value();
  return plan::IdentityPlan(**keep).value();
}

std::map<std::string, std::string> Materialize(const plan::Plan& p) {
  std::map<std::string, std::string> out;
  for (const auto& t : p.tensors) {
    auto v = plan::Evaluate(*t.expr);
    EXPECT_TRUE(v.ok());
    out[t.name] = std::string(reinterpret_cast<const char*>(v->data), v->meta.nbytes());
  }
  return out;
}

std::vector<std::string> Names(const plan::Plan& p) {
  std::vector<std::string> n;
  for (const auto& t : p.tensors) n.push_back(t.name);
  std::sort(n.begin(), n.end());
  return n;
}

TEST(ExpertPasses, StackIsIdempotentAndUnstackInvertsIt) {
  for (const char* fixture : {"moe-vlm-hf", "moe36-vlm-hf", "moe-vlm-hf-perexpert"}) {
    std::unique_ptr<Checkpoint> c;
    plan::Plan in = Load(fixture, &c);
    plan::Plan once = StackExpertsToSwitchMlp(in).value();
    plan::Plan twice = StackExpertsToSwitchMlp(once).value();
    EXPECT_EQ(Names(once), Names(twice));
    for (size_t i = 0; i < once.tensors.size(); ++i) EXPECT_EQ(once.tensors[i].expr, twice.tensors[i].expr);
    // Back to the fixture's own layout: the original tensors, byte for byte.
    ExpertLayout backbone = std::string(fixture) == "moe-vlm-hf-perexpert" ? ExpertLayout::kPerExpert : ExpertLayout::kFused;
    ExpertLayout mtp = std::string(fixture) == "moe36-vlm-hf" ? ExpertLayout::kFused : ExpertLayout::kPerExpert;
    plan::Plan back = UnstackSwitchMlp(once, backbone, mtp).value();
    EXPECT_EQ(Materialize(back), Materialize(in)) << fixture;
  }
}

TEST(ExpertPasses, MissingExpertIsStructural) {
  std::unique_ptr<Checkpoint> c;
  plan::Plan in = Load("moe-vlm-hf", &c);
  plan::Plan holed;
  for (auto& t : in.tensors) if (t.name != "mtp.layers.0.mlp.experts.1.up_proj.weight") holed.tensors.push_back(t);
  auto r = StackExpertsToSwitchMlp(holed);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ExitCode::kStructural);
  EXPECT_NE(r.status().message().find("expert 1"), std::string::npos);
}

TEST(LayoutPasses, IdempotentAndInverse) {
  std::unique_ptr<Checkpoint> c;
  plan::Plan in = Load("dense-vlm-hf", &c);
  plan::Plan mlx = AxesToMlx(in, 3, true).value();
  plan::Plan mlx2 = AxesToMlx(mlx, 3, false).value();
  for (size_t i = 0; i < mlx.tensors.size(); ++i) EXPECT_EQ(mlx.tensors[i].expr, mlx2.tensors[i].expr) << mlx.tensors[i].name;
  EXPECT_EQ(Materialize(AxesToHf(mlx, 3, false).value()), Materialize(in));
  int moved = 0;
  for (size_t i = 0; i < in.tensors.size(); ++i) moved += mlx.tensors[i].expr != in.tensors[i].expr;
  EXPECT_EQ(moved, 3 + 1);  // three conv1d + the patch embedding, nothing else
}

TEST(NormShift, TouchesOnlyZeroCenteredNormsPerBlock) {
  std::unique_ptr<Checkpoint> c;
  plan::Plan in = Load("moe-vlm-hf", &c);
  plan::Plan mtp_only = ShiftNorms(in, {0.0, 1.0, 1.0}, std::nullopt).value();
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    const std::string& n = in.tensors[i].name;
    bool changed = mtp_only.tensors[i].expr != in.tensors[i].expr;
    bool should = n.rfind("mtp.", 0) == 0 && IsZeroCenteredNorm(ClassifyRole(SplitTensorName(n)));
    EXPECT_EQ(changed, should) << n;
  }
}

TEST(CastPass, FoldsPendingShiftIntoOneRounding) {
  std::unique_ptr<Checkpoint> c;
  plan::Plan in = Load("dense-vlm-hf", &c);
  plan::Plan shifted = ShiftNorms(in, {1.0, 1.0, 1.0}, std::nullopt).value();
  plan::Plan cast = CastFloats(shifted, DType::kF16).value();
  for (const auto& t : cast.tensors) {
    if (t.expr->kind == plan::OpKind::kAddConstant) {
      EXPECT_EQ(t.expr->inputs[0]->kind, plan::OpKind::kSource) << t.name;  // add(src) -> f16 directly
      EXPECT_EQ(t.expr->meta.dtype, DType::kF16);
    }
  }
}

}  // namespace
}  // namespace forge::graft
