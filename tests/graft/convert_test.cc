// forge convert against references it did not produce: the *-mlx fixtures were written by
// scripts/make_mlx_reference.py (PyTorch, the spec's mlx-vlm sanitize rules) with Python safetensors.
#include "graft/convert.h"

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "forge/base/half.h"
#include "forge/plan/evaluate.h"
#include "forge/plan/writer.h"
#include "graft/rename_pass.h"
#include "inspect/classify.h"
#include "tests/st/test_files.h"

namespace forge::graft {
namespace {
namespace fs = std::filesystem;
using namespace testing;

// Converts `src` into `out` the way the CLI does (config + aux files carried).
ConvertPlan ConvertTo(const std::string& src, const std::string& out, ConvertOptions o) {
  auto ckpt = Checkpoint::Open(src);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  auto cp = BuildConvertPlan(**ckpt, o);
  EXPECT_TRUE(cp.ok()) << cp.status().ToString();
  plan::WriteOptions w;
  w.progress = false;
  w.metadata = cp->metadata;
  w.config = cp->config;
  for (const auto& f : (*ckpt)->aux_files()) w.copy_files.emplace_back(src + "/" + f, f);
  auto rep = plan::WritePlan(cp->plan, out, w);
  EXPECT_TRUE(rep.ok()) << rep.status().ToString();
  return std::move(cp).value();
}

ConvertOptions ToHf() {
  ConvertOptions o;
  o.to = TargetFormat::kHf;
  return o;
}

// Tensors (names, dtypes, shapes, bytes) of two checkpoints are identical.
void ExpectSameTensors(const std::string& a_dir, const std::string& b_dir) {
  auto a = Checkpoint::Open(a_dir), b = Checkpoint::Open(b_dir);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->tensors().size(), (*b)->tensors().size()) << a_dir << " vs " << b_dir;
  for (const auto& [name, ra] : (*a)->tensors()) {
    auto rb = (*b)->Find(name);
    ASSERT_TRUE(rb.has_value()) << name << " missing in " << b_dir;
    ASSERT_EQ(ra.info->dtype, rb->info->dtype) << name;
    ASSERT_EQ(ra.info->shape, rb->info->shape) << name;
    ASSERT_EQ(0, std::memcmp(ra.file->Data(*ra.info), rb->file->Data(*rb->info), ra.info->nbytes())) << name;
  }
}

class AgainstReferenceConverter : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(AgainstReferenceConverter, SameFileBytesAsTheReference) {
  const auto& [hf, mlx] = GetParam();
  TempDir t;
  ConvertTo(FixturePath(hf), t.Sub("out"), {});
  ExpectSameTensors(t.Sub("out"), FixturePath(mlx));
  // Same tensors + same metadata through the reference-compatible writer: the very same file.
  EXPECT_EQ(FirstDifference(t.Sub("out/model.safetensors"), FixturePath(mlx + "/model.safetensors")), "");
  auto cfg = ReadJson(t.Sub("out/config.json"));
  cfg.erase("forge_conversion");
  EXPECT_EQ(cfg, ReadJson(FixturePath(mlx + "/config.json")));
  EXPECT_EQ(FirstDifference(t.Sub("out/tokenizer.json"), FixturePath(hf + "/tokenizer.json")), "");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AgainstReferenceConverter,
                         ::testing::Values(std::make_pair("dense-vlm-hf", "dense-vlm-mlx"),
                                           std::make_pair("moe-vlm-hf", "moe-vlm-mlx"),
                                           std::make_pair("moe36-vlm-hf", "moe36-vlm-mlx")));

// Element-level golden check: shifted norms are exactly bf16(f32(w) + 1), every other tensor untouched
// or a pure re-layout, stacks equal to their sources slice by slice.
TEST(Convert, NormValuesAndStacksElementByElement) {
  auto src = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  auto cp = BuildConvertPlan(**src, {});
  ASSERT_TRUE(cp.ok());
  int shifted = 0, gated = 0, stacks = 0;
  for (const auto& t : cp->plan.tensors) {
    auto out = plan::Evaluate(*t.expr);
    ASSERT_TRUE(out.ok());
    SplitName sn = SplitTensorName(t.name);
    TensorRole role = ClassifyRole(sn);
    const std::string hf_name = HfName(t.name, HfNaming::kVlm);
    if (IsZeroCenteredNorm(role)) {
      auto in = (*src)->Find(hf_name);
      ASSERT_TRUE(in.has_value()) << hf_name;
      for (uint64_t i = 0; i < in->info->numel(); ++i) {
        float w = LoadAsF32(DType::kBF16, in->file->Data(*in->info), i);
        ASSERT_EQ(LoadAsF32(DType::kBF16, out->data, i), Bf16ToF32(F32ToBf16(w + 1.0f))) << t.name;
      }
      ++shifted;
    } else if (role == TensorRole::kGatedNorm) {
      auto in = (*src)->Find(hf_name);
      EXPECT_EQ(0, std::memcmp(in->file->Data(*in->info), out->data, in->info->nbytes())) << "gated norm shifted: " << t.name;
      ++gated;
    } else if (role == TensorRole::kExpertSwitch && sn.part == ModelPart::kMtp) {
      const std::string proj = t.name.substr(t.name.find("switch_mlp.") + 11);  // gate_proj.weight
      const uint64_t per = out->meta.nbytes() / out->meta.shape[0];
      for (uint64_t e = 0; e < out->meta.shape[0]; ++e) {
        auto in = (*src)->Find("mtp.layers.0.mlp.experts." + std::to_string(e) + "." + proj);
        ASSERT_TRUE(in.has_value());
        ASSERT_EQ(0, std::memcmp(in->file->Data(*in->info), out->data + e * per, per)) << t.name << " expert " << e;
      }
      ++stacks;
    }
  }
  EXPECT_EQ(shifted, 4 * 2 + 2 + 1 + 2 + 2 + 3);  // layer norms, q/k norms, final norm, MTP layer, MTP q/k, MTP pre_fc + norm
  EXPECT_EQ(gated, 3);
  EXPECT_EQ(stacks, 3);
}

class RoundTrip : public ::testing::TestWithParam<std::string> {};

// Compares a round-tripped HF checkpoint with the original: every tensor byte-identical, except
// zero-centered norm elements for which w + 1 is not exact in the intermediate dtype `via` (the MLX
// format stores w + 1); those must equal the value the two roundings give. Returns how many were inexact.
int ExpectRoundTripped(const std::string& original, const std::string& back, DType via) {
  auto a = Checkpoint::Open(original), b = Checkpoint::Open(back);
  EXPECT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->tensors().size(), (*b)->tensors().size());
  auto round = [via](float x) { return via == DType::kBF16 ? Bf16ToF32(F32ToBf16(x)) : x; };
  int inexact = 0;
  for (const auto& [n, ra] : (*a)->tensors()) {
    auto rb = (*b)->Find(n);
    if (!rb) { ADD_FAILURE() << n << " missing"; continue; }
    EXPECT_EQ(ra.info->shape, rb->info->shape) << n;
    EXPECT_EQ(ra.info->dtype, rb->info->dtype) << n;
    const uint8_t *pa = ra.file->Data(*ra.info), *pb = rb->file->Data(*rb->info);
    if (!IsZeroCenteredNorm(ClassifyRole(SplitTensorName(n)))) {
      EXPECT_EQ(0, std::memcmp(pa, pb, ra.info->nbytes())) << n;
      continue;
    }
    for (uint64_t i = 0; i < ra.info->numel(); ++i) {
      const float w = LoadAsF32(ra.info->dtype, pa, i), got = LoadAsF32(rb->info->dtype, pb, i);
      const float want = Bf16ToF32(F32ToBf16(round(w + 1.0f) - 1.0f));
      EXPECT_EQ(got, want) << n << "[" << i << "]";
      EXPECT_LE(std::fabs(got - w), via == DType::kBF16 ? std::ldexp(1.0f, -8) : std::ldexp(1.0f, -24)) << n;
      inexact += got != w;
    }
  }
  return inexact;
}

// HF -> MLX (f32 intermediate, where w + 1 is exact unless |w| < 2^-16) -> HF (bf16): the original tensors
// and config; single-file fixtures come back as the very same file when no norm element was inexact.
TEST_P(RoundTrip, HfToMlxToHfIsByteIdentical) {
  const std::string name = GetParam();
  TempDir t;
  ConvertOptions to_mlx;
  to_mlx.dtype = DType::kF32;
  ConvertTo(FixturePath(name), t.Sub("mlx"), to_mlx);
  ConvertOptions back = ToHf();
  back.dtype = DType::kBF16;
  ConvertTo(t.Sub("mlx"), t.Sub("hf"), back);
  const int inexact = ExpectRoundTripped(FixturePath(name), t.Sub("hf"), DType::kF32);
  EXPECT_LE(inexact, 1) << "more raw norm values below 2^-16 than expected";
  // The config comes back as it was, except that a declared-but-missing MTP head is made consistent.
  auto want = ReadJson(FixturePath(name + "/config.json"));
  if (name.find("nomtp") != std::string::npos) want["text_config"]["mtp_num_hidden_layers"] = 0;
  EXPECT_EQ(ReadJson(t.Sub("hf/config.json")), want);
  if (inexact == 0 && fs::exists(FixturePath(name + "/model.safetensors"))) {
    EXPECT_EQ(FirstDifference(t.Sub("hf/model.safetensors"), FixturePath(name + "/model.safetensors")), "");
  }
}

// In bf16 the MLX leg stores bf16(w + 1) (spacing 2^-7 near 1): only zero-centered norms may change, each by
// at most half that spacing, to exactly bf16(bf16(w + 1) - 1); everything else is byte-identical.
TEST_P(RoundTrip, Bf16RoundTripChangesOnlyNormLowBits) {
  const std::string name = GetParam();
  TempDir t;
  ConvertTo(FixturePath(name), t.Sub("mlx"), {});
  ConvertTo(t.Sub("mlx"), t.Sub("hf"), ToHf());
  ExpectRoundTripped(FixturePath(name), t.Sub("hf"), DType::kBF16);
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, RoundTrip,
                         ::testing::Values("dense-vlm-hf", "dense-text-hf", "dense-other-hf", "moe-vlm-hf",
                                           "moe36-vlm-hf", "moe-vlm-hf-perexpert", "dense-vlm-finetune-nomtp",
                                           "moe-vlm-finetune-nomtp"),
                         [](const auto& p) {
                           std::string n = p.param;
                           for (auto& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

TEST(Convert, MlxToHfToMlxIsByteIdentical) {
  for (const char* name : {"dense-vlm-mlx", "moe-vlm-mlx", "moe36-vlm-mlx"}) {
    TempDir t;
    ConvertTo(FixturePath(name), t.Sub("hf"), ToHf());
    auto inspect_hf = inspect::InspectCheckpoint(**Checkpoint::Open(t.Sub("hf")));
    EXPECT_EQ(inspect_hf.exit_code, ExitCode::kOk) << name;
    EXPECT_EQ(inspect_hf.format, "hf");
    ConvertTo(t.Sub("hf"), t.Sub("mlx"), {});
    EXPECT_EQ(FirstDifference(t.Sub("mlx/model.safetensors"), FixturePath(std::string(name) + "/model.safetensors")), "") << name;
  }
}

TEST(Convert, ConvertingTwiceChangesNothing) {
  TempDir t;
  ConvertTo(FixturePath("moe-vlm-hf"), t.Sub("once"), {});
  ConvertPlan again = ConvertTo(t.Sub("once"), t.Sub("twice"), {});
  EXPECT_TRUE(again.already_in_target);
  EXPECT_EQ(again.deltas.backbone, 0);
  EXPECT_EQ(again.deltas.mtp_layers, 0);
  EXPECT_EQ(again.deltas.mtp_head, 0);
  for (const auto& tn : again.plan.tensors) EXPECT_TRUE(tn.expr->IsPlainCopy()) << tn.name;
  EXPECT_EQ(FirstDifference(t.Sub("once/model.safetensors"), t.Sub("twice/model.safetensors")), "");
  EXPECT_EQ(ReadJson(t.Sub("once/config.json")), ReadJson(t.Sub("twice/config.json")));
}

TEST(Convert, MixedConventionIsRefusedWithTheListsThenFixed) {
  auto mixed = Checkpoint::Open(FixturePath("moe-vlm-mlx-mixed"));
  auto refused = BuildConvertPlan(**mixed, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ExitCode::kStructural);
  const std::string msg = refused.status().ToString();
  EXPECT_NE(msg.find("backbone shifted"), std::string::npos) << msg;
  EXPECT_NE(msg.find("MTP layer norms zero_centered (language_model.mtp.layers.0.input_layernorm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("MTP head norms shifted (language_model.mtp.norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--fix-norms"), std::string::npos);
  ConvertOptions wrong;
  wrong.fix_norms = inspect::NormConvention::kZeroCentered;
  EXPECT_EQ(BuildConvertPlan(**mixed, wrong).status().code(), ExitCode::kUsage);
  // --fix-norms shifted adds +1 to the raw MTP layer norms only (the head norms are already shifted): the
  // result is the correctly converted checkpoint, with nothing shifted twice.
  ConvertOptions fix;
  fix.fix_norms = inspect::NormConvention::kShifted;
  TempDir t;
  ConvertPlan cp = ConvertTo(FixturePath("moe-vlm-mlx-mixed"), t.Sub("fixed"), fix);
  EXPECT_EQ(cp.deltas.backbone, 0);
  EXPECT_EQ(cp.deltas.mtp_layers, 1);
  EXPECT_EQ(cp.deltas.mtp_head, 0);
  ExpectSameTensors(t.Sub("fixed"), FixturePath("moe-vlm-mlx"));
}

// A raw MTP head grafted into an MLX trunk without conversion: both MTP groups raw, both get +1.
TEST(Convert, WholeRawMtpHeadInMlxTrunkIsFixedPerGroup) {
  auto mlx = Checkpoint::Open(FixturePath("moe-vlm-mlx"));
  auto hf = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  plan::Plan p;
  for (const auto& [name, ref] : (*mlx)->tensors()) {
    auto e = plan::Source(ref).value();
    if (name.rfind("language_model.mtp.", 0) == 0 && IsZeroCenteredNorm(ClassifyRole(SplitTensorName(name)))) {
      e = plan::Source(*(*hf)->Find(HfName(name, HfNaming::kVlm))).value();  // the raw value
    }
    p.tensors.push_back({name, e});
  }
  TempDir t;
  plan::WriteOptions w;
  w.progress = false;
  w.metadata = {{"format", "mlx"}};
  w.config = (*mlx)->config()->raw;
  ASSERT_TRUE(plan::WritePlan(p, t.Sub("rawhead"), w).ok());
  auto r = inspect::InspectCheckpoint(**Checkpoint::Open(t.Sub("rawhead")));
  EXPECT_EQ(inspect::NormConventionName(r.norms.mtp_layers), "zero_centered");
  EXPECT_EQ(inspect::NormConventionName(r.norms.mtp_head), "zero_centered");
  EXPECT_EQ(r.exit_code, ExitCode::kStructural);
  ConvertOptions fix;
  fix.fix_norms = inspect::NormConvention::kShifted;
  ConvertPlan cp = ConvertTo(t.Sub("rawhead"), t.Sub("fixed"), fix);
  EXPECT_EQ(cp.deltas.mtp_layers, 1);
  EXPECT_EQ(cp.deltas.mtp_head, 1);
  ExpectSameTensors(t.Sub("fixed"), FixturePath("moe-vlm-mlx"));
}

TEST(Convert, DropMtpAndVisionKeepConfigConsistent) {
  TempDir t;
  ConvertOptions o;
  o.drop_mtp = true;
  o.drop_vision = true;
  ConvertTo(FixturePath("moe-vlm-hf"), t.Sub("out"), o);
  auto out = Checkpoint::Open(t.Sub("out"));
  ASSERT_TRUE(out.ok());
  for (const auto& [name, ref] : (*out)->tensors()) {
    EXPECT_EQ(name.find("mtp."), std::string::npos) << name;
    EXPECT_EQ(name.find("vision_tower."), std::string::npos) << name;
  }
  auto cfg = ReadJson(t.Sub("out/config.json"));
  EXPECT_EQ(cfg["text_config"]["mtp_num_hidden_layers"], 0);
  EXPECT_FALSE(cfg.contains("vision_config"));
  auto r = inspect::InspectCheckpoint(**out);
  EXPECT_EQ(inspect::MtpStatusName(r.mtp.status), "absent");
  EXPECT_TRUE(r.problems.empty()) << r.problems.front();
}

TEST(Convert, DeclaredButMissingBecomesConsistent) {
  TempDir t;
  ConvertPlan cp = ConvertTo(FixturePath("moe-vlm-finetune-nomtp"), t.Sub("out"), {});
  EXPECT_EQ(ReadJson(t.Sub("out/config.json"))["text_config"]["mtp_num_hidden_layers"], 0);
  auto r = inspect::InspectCheckpoint(**Checkpoint::Open(t.Sub("out")));
  EXPECT_EQ(r.format, "mlx");
  EXPECT_EQ(ExpertLayoutName(r.backbone_layout), "switch_mlp");
  EXPECT_EQ(inspect::MtpStatusName(r.mtp.status), "absent");
}

TEST(Convert, DtypeF16RoundsNormShiftOnceAndKeepsALog) {
  auto src = Checkpoint::Open(FixturePath("dense-vlm-hf"));
  ConvertOptions o;
  o.dtype = DType::kF16;
  auto cp = BuildConvertPlan(**src, o);
  ASSERT_TRUE(cp.ok());
  for (const auto& t : cp->plan.tensors) {
    TensorRole role = ClassifyRole(SplitTensorName(t.name));
    if (role == TensorRole::kALog) {
      EXPECT_EQ(t.expr->meta.dtype, DType::kBF16) << t.name;
      continue;
    }
    EXPECT_EQ(t.expr->meta.dtype, DType::kF16) << t.name;
    if (t.name == "language_model.model.norm.weight") {
      auto in = (*src)->Find("model.language_model.norm.weight");
      auto out = plan::Evaluate(*t.expr);
      for (uint64_t i = 0; i < in->info->numel(); ++i) {
        float w = LoadAsF32(DType::kBF16, in->file->Data(*in->info), i);
        ASSERT_EQ(LoadAsF32(DType::kF16, out->data, i), F16ToF32(F32ToF16(w + 1.0f)));
      }
    }
  }
}

TEST(Convert, TextOnlyNamesRoundTripThroughModelPrefix) {
  EXPECT_EQ(MlxName("model.layers.0.mlp.up_proj.weight"), "language_model.model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(MlxName("model.language_model.norm.weight"), "language_model.model.norm.weight");
  EXPECT_EQ(MlxName("model.visual.blocks.0.attn.qkv.weight"), "vision_tower.blocks.0.attn.qkv.weight");
  EXPECT_EQ(MlxName("mtp.fc.weight"), "language_model.mtp.fc.weight");
  EXPECT_EQ(MlxName("lm_head.weight"), "language_model.lm_head.weight");
  EXPECT_EQ(MlxName("language_model.mtp.fc.weight"), "language_model.mtp.fc.weight");  // idempotent
  EXPECT_EQ(HfName("language_model.model.layers.0.mlp.up_proj.weight", HfNaming::kText), "model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(HfName("language_model.model.norm.weight", HfNaming::kVlm), "model.language_model.norm.weight");
  EXPECT_EQ(HfName("vision_tower.pos_embed.weight", HfNaming::kVlm), "model.visual.pos_embed.weight");
}

TEST(Convert, FlatTextConfigGetsTheModelTypeMlxLmLoads) {
  TempDir t;
  ConvertTo(FixturePath("dense-text-hf"), t.Sub("mlx"), {});
  auto cfg = ReadJson(t.Sub("mlx/config.json"));
  EXPECT_EQ(cfg["model_type"], "qwen3_5");
  EXPECT_EQ(cfg["forge_conversion"]["model_type"], "qwen3_5_text");
  auto out = Checkpoint::Open(t.Sub("mlx"));
  EXPECT_NE((*out)->Find("language_model.model.layers.0.linear_attn.conv1d.weight"), std::nullopt);
  ConvertTo(t.Sub("mlx"), t.Sub("hf"), ToHf());
  EXPECT_EQ(ReadJson(t.Sub("hf/config.json")), ReadJson(FixturePath("dense-text-hf/config.json")));
  EXPECT_NE(Checkpoint::Open(t.Sub("hf")).value()->Find("model.layers.0.linear_attn.conv1d.weight"), std::nullopt);
}

TEST(Convert, QuantizedToHfIsRefused) {
  auto q = Checkpoint::Open(FixturePath("dense-vlm-mlx-q4"));
  auto r = BuildConvertPlan(**q, ToHf());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("dequantize"), std::string::npos);
}

}  // namespace
}  // namespace forge::graft
