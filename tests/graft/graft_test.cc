// forge graft / strip-mtp / fix-config / manifest / trunk check.
#include "graft/graft.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "forge/base/float_access.h"
#include "forge/base/fs_util.h"
#include "forge/plan/writer.h"
#include "graft/convert.h"
#include "graft/head_surgery.h"
#include "graft/quantize_recipe.h"
#include "inspect/classify.h"
#include "verify/manifest.h"
#include "verify/trunk_check.h"
#include "tests/st/test_files.h"

namespace forge::graft {
namespace {
namespace fs = std::filesystem;
using namespace testing;

bool IsMtp(const std::string& n) { return SplitTensorName(n).part == ModelPart::kMtp; }

// Writes `fixture` converted to MLX (optionally quantized) into dir/name; returns the path.
std::string MlxCopy(const TempDir& t, const std::string& fixture, const std::string& name, bool quantize4 = false) {
  auto src = Checkpoint::Open(FixturePath(fixture));
  plan::WriteOptions w;
  w.progress = false;
  w.metadata = {{"format", "mlx"}};
  if (quantize4) {
    QuantizeOptions o;
    o.policy.top = quant::DefaultParams(quant::QuantMode::kAffine);
    auto r = BuildQuantizeRecipe(**src, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    w.config = r->config;
    EXPECT_TRUE(plan::WritePlan(r->plan, t.Sub(name), w).ok());
  } else {
    auto cp = BuildConvertPlan(**src, {});
    EXPECT_TRUE(cp.ok());
    w.config = cp->config;
    EXPECT_TRUE(plan::WritePlan(cp->plan, t.Sub(name), w).ok());
  }
  fs::copy_file(FixturePath(fixture + "/tokenizer.json"), t.Sub(name + "/tokenizer.json"));
  return t.Sub(name);
}

struct Grafted {
  nlohmann::json write;
  inspect::Report report;
  std::unique_ptr<Checkpoint> out;
};

Grafted DoGraft(const std::string& src_dir, const std::string& base_dir, const std::string& out, GraftOptions o = {}, bool link = false) {
  Grafted g;
  auto src = Checkpoint::Open(src_dir), base = Checkpoint::Open(base_dir);
  EXPECT_TRUE(src.ok() && base.ok());
  auto plan = BuildGraftPlan(**src, **base, o);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  SurgeryWrite w;
  w.progress = false;
  w.link = link;
  auto rep = WriteSurgery(**src, plan->out, plan->config, out, w);
  EXPECT_TRUE(rep.ok()) << rep.status().ToString();
  g.write = *rep;
  g.out = std::move(Checkpoint::Open(out)).value();
  g.report = inspect::InspectCheckpoint(*g.out);
  EXPECT_EQ(g.report.exit_code, ExitCode::kOk) << out << ": " << (g.report.problems.empty() ? g.report.verdict : g.report.problems[0]);
  EXPECT_TRUE(verify::CheckTrunk(**src, *g.out).ok());
  auto m = verify::CheckManifest(out, false);
  EXPECT_TRUE(m.ok() && m->ok());
  return g;
}

// The head tensors of `got` equal those of `want` byte for byte (names as stored in each).
void ExpectSameHead(const Checkpoint& got, const std::string& want_dir) {
  auto want = Checkpoint::Open(want_dir);
  int n = 0;
  for (const auto& [name, ref] : (*want)->tensors()) {
    if (!IsMtp(name)) continue;
    auto g = got.Find(name);
    ASSERT_TRUE(g.has_value()) << name;
    ASSERT_EQ(g->info->shape, ref.info->shape) << name;
    ASSERT_EQ(g->info->dtype, ref.info->dtype) << name;
    EXPECT_EQ(0, std::memcmp(g->file->Data(*g->info), ref.file->Data(*ref.info), ref.info->nbytes())) << name;
    ++n;
  }
  int heads = 0;
  for (const auto& [name, ref] : got.tensors()) heads += IsMtp(name);
  EXPECT_EQ(n, heads);
}

TEST(Graft, HfIntoHfCopiesTheHeadVerbatimForEveryLayout) {
  TempDir t;
  auto dense = DoGraft(FixturePath("dense-vlm-finetune-nomtp"), FixturePath("dense-vlm-hf"), t.Sub("dense"));
  ExpectSameHead(*dense.out, FixturePath("dense-vlm-hf"));
  auto moe35 = DoGraft(FixturePath("moe-vlm-finetune-nomtp"), FixturePath("moe-vlm-hf"), t.Sub("moe35"));
  ExpectSameHead(*moe35.out, FixturePath("moe-vlm-hf"));
  EXPECT_EQ(ExpertLayoutName(moe35.report.mtp_layout), "per_expert");
  auto moe36 = DoGraft(FixturePath("moe-vlm-finetune-nomtp"), FixturePath("moe36-vlm-hf"), t.Sub("moe36"));
  ExpectSameHead(*moe36.out, FixturePath("moe36-vlm-hf"));
  EXPECT_EQ(ExpertLayoutName(moe36.report.mtp_layout), "fused");
  EXPECT_EQ(ReadJson(t.Sub("moe35/config.json"))["text_config"]["mtp_num_hidden_layers"], 1);
}

// The HF head adapted into an MLX trunk must equal the independent PyTorch conversion (moe-vlm-mlx).
TEST(Graft, HfHeadIntoMlxTrunkEqualsTheReferenceConversion) {
  TempDir t;
  const std::string src = MlxCopy(t, "moe-vlm-finetune-nomtp", "ft-mlx");
  for (const char* base : {"moe-vlm-hf", "moe-vlm-hf-perexpert", "moe36-vlm-hf", "moe-vlm-mlx"}) {
    auto g = DoGraft(src, FixturePath(base), t.Sub(std::string("out-") + base));
    ExpectSameHead(*g.out, FixturePath(std::string(base).find("36") != std::string::npos ? "moe36-vlm-mlx" : "moe-vlm-mlx"));
    EXPECT_EQ(NormConventionName(g.report.norms.overall), "shifted") << base;
  }
  auto dense_src = MlxCopy(t, "dense-vlm-finetune-nomtp", "dft-mlx");
  auto dense = DoGraft(dense_src, FixturePath("dense-vlm-hf"), t.Sub("dense"));
  ExpectSameHead(*dense.out, FixturePath("dense-vlm-mlx"));
}

TEST(Graft, MlxHeadIntoHfTrunkIsConvertedBack) {
  TempDir t;
  auto g = DoGraft(FixturePath("moe-vlm-finetune-nomtp"), FixturePath("moe-vlm-mlx"), t.Sub("out"));
  auto want = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  int n = 0;
  for (const auto& [name, ref] : (*want)->tensors()) {
    if (!IsMtp(name)) continue;
    auto got = g.out->Find(name);
    ASSERT_TRUE(got.has_value()) << name;
    const bool norm = IsZeroCenteredNorm(ClassifyRole(SplitTensorName(name)));
    for (uint64_t i = 0; i < ref.info->numel(); ++i) {
      const float w = LoadAsF32(DType::kBF16, ref.file->Data(*ref.info), i), v = LoadAsF32(DType::kBF16, got->file->Data(*got->info), i);
      // Norms went through the MLX form: exactly bf16(bf16(w+1)-1); everything else exactly w.
      ASSERT_EQ(v, norm ? Bf16ToF32(F32ToBf16(Bf16ToF32(F32ToBf16(w + 1.0f)) - 1.0f)) : w) << name << "[" << i << "]";
    }
    ++n;
  }
  EXPECT_EQ(n, 29);
  EXPECT_EQ(NormConventionName(g.report.norms.overall), "zero_centered");
}

TEST(Graft, QuantizedTrunkGetsAHeadQuantizedLikeIt) {
  TempDir t;
  const std::string src = MlxCopy(t, "moe-vlm-finetune-nomtp", "ft-q4", true);
  auto g = DoGraft(src, FixturePath("moe-vlm-hf"), t.Sub("out"));
  auto cfg = ReadJson(t.Sub("out/config.json"));
  EXPECT_EQ(cfg["quantization"], cfg["quantization_config"]);
  EXPECT_EQ(cfg["quantization"]["language_model.mtp.layers.0.mlp.gate"]["bits"], 8);  // router rule
  EXPECT_TRUE(g.out->Find("language_model.mtp.layers.0.self_attn.q_proj.scales").has_value());
  EXPECT_FALSE(g.out->Find("language_model.mtp.fc.scales").has_value());  // mtp.fc kept float
  // mtp.fc float equals the reference conversion.
  auto ref = Checkpoint::Open(FixturePath("moe-vlm-mlx"));
  auto a = g.out->Find("language_model.mtp.fc.weight"), b = (*ref)->Find("language_model.mtp.fc.weight");
  EXPECT_EQ(0, std::memcmp(a->file->Data(*a->info), b->file->Data(*b->info), b->info->nbytes()));
  EXPECT_GT(g.report.quant.quantized_by_part["mtp"], 5);

  // A donor already quantized alike: its head modules are copied verbatim.
  const std::string qbase = MlxCopy(t, "moe-vlm-hf", "base-q4", true);
  auto src_ck = Checkpoint::Open(src), base_ck = Checkpoint::Open(qbase);
  auto plan = BuildGraftPlan(**src_ck, **base_ck, {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  int copies = 0;
  for (const auto& [name, how] : plan->head) copies += how.rfind("copy of ", 0) == 0 && EndsWith(name, ".scales");
  EXPECT_GT(copies, 5);
}

TEST(Graft, SidecarAndLink) {
  TempDir t;
  const std::string src = MlxCopy(t, "moe-vlm-finetune-nomtp", "ft-mlx");
  GraftOptions o;
  o.layout = RuntimeLayout::kMtplx;
  auto g = DoGraft(src, FixturePath("moe-vlm-hf"), t.Sub("side"), o, /*link=*/true);
  EXPECT_TRUE(fs::exists(t.Sub("side/mtp.safetensors")));
  EXPECT_FALSE(fs::exists(t.Sub("side/model.safetensors.index.json")));  // single trunk file, head outside
  EXPECT_EQ(ReadJson(t.Sub("side/config.json"))["mlx_lm_extra_tensors"]["mtp_file"], "mtp.safetensors");
  EXPECT_EQ(g.out->sidecar(), "mtp.safetensors");
  struct stat a {}, b {};
  ASSERT_EQ(::stat(t.Sub("side/model.safetensors").c_str(), &a), 0);
  ASSERT_EQ(::stat((src + "/model.safetensors").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // hard link: no bytes copied
  EXPECT_EQ(g.write["linked_files"], 1);
}

// A --link graft reads only what it wrote: the trunk check takes the linked trunk as identical by inode,
// and the manifest records the linked file by size (no source manifest) or inherits the source's hashes.
TEST(Graft, LinkedTrunkIsNeitherComparedNorHashed) {
  TempDir t;
  const std::string src = MlxCopy(t, "moe-vlm-finetune-nomtp", "ft-mlx");
  GraftOptions o;
  o.layout = RuntimeLayout::kMtplx;
  auto g = DoGraft(src, FixturePath("moe-vlm-hf"), t.Sub("g1"), o, /*link=*/true);
  const auto& checks = g.write["checks"];
  const int trunk = checks["trunk_tensors_identical"];
  EXPECT_GT(trunk, 20);
  EXPECT_EQ(checks["trunk_tensors_linked"], trunk);
  EXPECT_EQ(checks["manifest_files_size_only"], 1);
  auto m1 = nlohmann::json::parse(ReadTextFile(t.Sub("g1/") + verify::kManifestName).value());
  EXPECT_FALSE(m1["files"]["model.safetensors"].contains("sha1"));
  EXPECT_EQ(m1["files"]["model.safetensors"]["linked_from"], src + "/model.safetensors");
  EXPECT_TRUE(m1["files"]["mtp.safetensors"].contains("sha1"));  // what it wrote is hashed
  auto c1 = verify::CheckManifest(t.Sub("g1"), false);
  ASSERT_TRUE(c1.ok());
  EXPECT_TRUE(c1->ok());
  EXPECT_EQ(c1->size_only(), 1);

  // With a manifest in the source, the linked entries are the source's own.
  auto src_manifest = verify::BuildManifest(src);
  ASSERT_TRUE(src_manifest.ok());
  ASSERT_TRUE(WriteTextFile(src + "/" + verify::kManifestName, src_manifest->dump(2)).ok());
  auto g2 = DoGraft(src, FixturePath("moe-vlm-hf"), t.Sub("g2"), o, /*link=*/true);
  EXPECT_EQ(g2.write["checks"]["manifest_files_size_only"], 0);
  auto m2 = nlohmann::json::parse(ReadTextFile(t.Sub("g2/") + verify::kManifestName).value());
  EXPECT_EQ(m2["files"]["model.safetensors"], (*src_manifest)["files"]["model.safetensors"]);
  int inherited = 0;
  for (auto it = (*src_manifest)["tensors"].begin(); it != (*src_manifest)["tensors"].end(); ++it) {
    EXPECT_EQ(m2["tensors"][it.key()], it.value()) << it.key();
    ++inherited;
  }
  EXPECT_EQ(inherited, trunk);
  auto c2 = verify::CheckManifest(t.Sub("g2"), false);
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(c2->ok()) << c2->mismatches.front();
  EXPECT_EQ(c2->size_only(), 0);
}

// Without --link the trunk files are copied once: each chunk is read back and compared with the source as
// it is written (the trunk check then reads nothing again) and hashed for the manifest on the way. The
// manifest equals one made from scratch on the output, whether the source has a manifest to inherit
// tensor hashes from, has none, or has a stale one (another file's bytes: nothing inherited).
TEST(Graft, CopiedTrunkIsProvenAndHashedWhileCopying) {
  TempDir t;
  const std::string src = MlxCopy(t, "moe-vlm-finetune-nomtp", "ft-mlx");
  GraftOptions o;
  o.layout = RuntimeLayout::kMtplx;
  auto expect_fresh_manifest = [&](const std::string& out) {
    auto fresh = verify::BuildManifest(out);
    ASSERT_TRUE(fresh.ok());
    EXPECT_EQ(nlohmann::json::parse(ReadTextFile(out + "/" + verify::kManifestName).value()), *fresh);
  };
  auto g1 = DoGraft(src, FixturePath("moe-vlm-hf"), t.Sub("g1"), o);
  const auto& checks = g1.write["checks"];
  EXPECT_GT(checks["trunk_tensors_identical"].get<int>(), 20);
  EXPECT_EQ(checks["trunk_tensors_compared_while_copying"], checks["trunk_tensors_identical"]);
  EXPECT_EQ(checks["trunk_tensors_linked"], 0);
  EXPECT_EQ(checks["trunk_bytes_compared"], 0);  // nothing read a second time
  EXPECT_EQ(g1.write["copied_files"], 1);
  expect_fresh_manifest(t.Sub("g1"));

  auto src_manifest = verify::BuildManifest(src);
  ASSERT_TRUE(src_manifest.ok());
  ASSERT_TRUE(WriteTextFile(src + "/" + verify::kManifestName, src_manifest->dump(2)).ok());
  DoGraft(src, FixturePath("moe-vlm-hf"), t.Sub("g2"), o);
  expect_fresh_manifest(t.Sub("g2"));

  nlohmann::json stale = *src_manifest;  // as if the file had been rewritten after its manifest was made
  stale["files"]["model.safetensors"]["sha1"] = std::string(40, '0');
  for (auto& e : stale["tensors"]) e["sha1"] = std::string(40, '1');
  ASSERT_TRUE(WriteTextFile(src + "/" + verify::kManifestName, stale.dump(2)).ok());
  DoGraft(src, FixturePath("moe-vlm-hf"), t.Sub("g3"), o);
  expect_fresh_manifest(t.Sub("g3"));
}

TEST(Graft, UnrelatedDonorIsRefusedWithTheList) {
  auto src = Checkpoint::Open(FixturePath("dense-vlm-finetune-nomtp")), base = Checkpoint::Open(FixturePath("dense-other-hf"));
  auto r = BuildGraftPlan(**src, **base, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ExitCode::kMtpMismatch);
  const std::string m = r.status().message();
  EXPECT_NE(m.find("hidden_size is 64 in SRC but 48 in BASE"), std::string::npos) << m;
  EXPECT_NE(m.find("vocab_size is 320 in SRC but 300 in BASE"), std::string::npos) << m;
  GraftOptions o;
  o.allow_lineage_mismatch = true;
  auto forced = BuildGraftPlan(**src, **base, o);
  ASSERT_TRUE(forced.ok());
  bool tokenizer = false;
  for (const auto& x : forced->fit.refusals) tokenizer |= x.find("tokenizer.json differs") != std::string::npos;
  EXPECT_TRUE(tokenizer);
}

TEST(Graft, LineageLooksLikeAFineTuneAndHeadlessDonorsAreRefused) {
  auto src = Checkpoint::Open(FixturePath("moe-vlm-finetune-nomtp")), base = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  auto r = BuildGraftPlan(**src, **base, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->fit.lineage.verdict, "consistent with a fine-tune of BASE");
  EXPECT_GT(r->fit.lineage.median_relative_l2, 0.0);
  EXPECT_LT(r->fit.lineage.median_relative_l2, 0.1);
  auto headless = BuildGraftPlan(**base, **src, {});
  EXPECT_EQ(headless.status().code(), ExitCode::kNothingToDo);
}

TEST(Surgery, StripAndFixConfig) {
  TempDir t;
  auto src = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  auto s = BuildStripPlan(**src);
  ASSERT_TRUE(s.ok());
  SurgeryWrite w;
  w.progress = false;
  ASSERT_TRUE(WriteSurgery(**src, s->out, s->config, t.Sub("stripped"), w).ok());
  auto r = inspect::InspectCheckpoint(**Checkpoint::Open(t.Sub("stripped")));
  EXPECT_EQ(inspect::MtpStatusName(r.mtp.status), "absent");
  EXPECT_TRUE(r.problems.empty());

  auto ft = Checkpoint::Open(FixturePath("dense-vlm-finetune-nomtp"));
  auto f = BuildFixConfigPlan(**ft);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(WriteSurgery(**ft, f->out, f->config, t.Sub("fixed"), w).ok());
  EXPECT_EQ(inspect::MtpStatusName(inspect::InspectCheckpoint(**Checkpoint::Open(t.Sub("fixed"))).mtp.status), "absent");
  EXPECT_EQ(BuildFixConfigPlan(**src).status().code(), ExitCode::kNothingToDo);
}

TEST(Verify, DigestsMatchKnownVectors) {
  const std::string abc = "abc", digits = "123456789";
  EXPECT_EQ(verify::Sha1Hex(reinterpret_cast<const uint8_t*>(abc.data()), 3), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(verify::Crc32Hex(reinterpret_cast<const uint8_t*>(digits.data()), 9), "cbf43926");
}

TEST(Verify, ManifestAndTrunkCheckDetectChanges) {
  TempDir t;
  CopyTree(FixturePath("dense-vlm-hf"), t.Sub("c"));
  auto m = verify::BuildManifest(t.Sub("c"));
  ASSERT_TRUE(m.ok());
  WriteFile(t.Sub("c/forge-manifest.json"), m->dump(2));
  EXPECT_TRUE(verify::CheckManifest(t.Sub("c"), false)->ok());
  // Flip one byte of the first tensor in the file (the embedding, a trunk tensor).
  std::string bytes = ReadFile(t.Sub("c/model.safetensors"));
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  bytes[8 + header + 5] ^= 0x01;
  WriteFile(t.Sub("c/model.safetensors"), bytes);
  auto fast = verify::CheckManifest(t.Sub("c"), true);
  ASSERT_FALSE(fast->ok());
  EXPECT_NE(fast->mismatches[0].find("model.safetensors: crc32"), std::string::npos) << fast->mismatches[0];
  auto trunk = verify::CheckTrunk(**Checkpoint::Open(FixturePath("dense-vlm-hf")), **Checkpoint::Open(t.Sub("c")));
  ASSERT_EQ(trunk.mismatches.size(), 1u);
  EXPECT_NE(trunk.mismatches[0].find("bytes differ"), std::string::npos);
}

}  // namespace
}  // namespace forge::graft
