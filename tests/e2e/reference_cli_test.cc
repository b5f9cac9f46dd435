// `forge verify --reference` end to end: forge's decoder against the transformers references committed in
// fixtures/references (made on the GPU machine; not computed by forge), on every HF fixture with one and on
// MLX conversions; two classic surgery bugs planted in copies (the MTP fc concat in the wrong order, a
// layer's gate and up projections swapped) are caught where they are, and bad references are one-line
// errors naming the file and tensor.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;

nlohmann::json Json(const CommandResult& r) { return nlohmann::json::parse(r.out, nullptr, false); }

std::string Ref(const std::string& name) { return FixturePath("references/" + name + ".tokens.json"); }

TEST(ReferenceCli, EveryHfFixtureReproducesTransformers) {
  for (const char* name : {"dense-vlm-hf", "dense-text-hf", "moe-vlm-hf", "trained-vlm-hf"}) {
    auto r =
        RunForge(std::string("verify --json --reference ") + Ref(name) + " --model " + FixturePath(name));
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err << r.out;
    const auto j = Json(r);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_TRUE(j["identical"].get<bool>());
    EXPECT_EQ(j["steps"]["argmax_equal"], j["steps"]["positions"]) << name;
    EXPECT_GT(j["steps"]["positions"].get<int>(), 0);
    EXPECT_LT(j["steps"]["max_rel_error"].get<double>(), 1e-3) << name;
    ASSERT_TRUE(j["mtp"].is_object()) << name;
    EXPECT_EQ(j["mtp"]["argmax_equal"], j["mtp"]["positions"]) << name;
    EXPECT_LT(j["mtp"]["max_rel_error"].get<double>(), 1e-3) << name;
    EXPECT_EQ(j["exit_code"], 0);
    // The same transformers numbers in any layout of the same weights.
  }
  for (const char* layout : {"moe36-vlm-hf", "moe-vlm-hf-perexpert"}) {
    auto r = RunForge(std::string("verify --json --reference ") + Ref("moe-vlm-hf") + " --model " +
                      FixturePath(layout));
    EXPECT_EQ(r.exit_code, 0) << layout << ": " << r.err;
  }
}

TEST(ReferenceCli, AFineTuneWithoutAHeadComparesTheBackbone) {
  auto r = RunForge("verify --json --reference " + Ref("trained-vlm-finetune-nomtp") + " --model " +
                    FixturePath("trained-vlm-finetune-nomtp"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = Json(r);
  EXPECT_TRUE(j["mtp"].is_null());
  EXPECT_EQ(j["mtp_note"], "the model has no MTP head");
}

TEST(ReferenceCli, AnMlxF32ConversionReproducesTransformers) {
  // In f32 the +1 norm shift is exact, so the converted model is the same function.
  TempDir dir;
  ASSERT_EQ(
      RunForge("convert --quiet --dtype f32 --src " + FixturePath("moe-vlm-hf") + " --out " + dir.Sub("mlx"))
          .exit_code,
      0);
  auto r = RunForge("verify --json --reference " + Ref("moe-vlm-hf") + " --model " + dir.Sub("mlx"));
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
}

TEST(ReferenceCli, CatchesTheMtpConcatInTheWrongOrder) {
  // mtp.fc takes concat(embedding, hidden); a head whose fc columns were written hidden-first keeps the
  // backbone exact and breaks every draft.
  TempDir dir;
  CopyTree(FixturePath("dense-vlm-hf"), dir.Sub("m"));
  PatchTensor(dir.Sub("m/model.safetensors"), "mtp.fc.weight",
              [](uint8_t* d, uint64_t, const std::vector<int64_t>& s) {
                const int64_t rows = s[0], cols = s[1], half = cols / 2;
                for (int64_t r = 0; r < rows; ++r) {
                  uint16_t* row = reinterpret_cast<uint16_t*>(d) + r * cols;
                  for (int64_t c = 0; c < half; ++c) std::swap(row[c], row[c + half]);
                }
              });
  auto r = RunForge("verify --json --reference " + Ref("dense-vlm-hf") + " --model " + dir.Sub("m"));
  EXPECT_EQ(r.exit_code, 5) << r.err;
  const auto j = Json(r);
  EXPECT_FALSE(j["identical"].get<bool>());
  EXPECT_TRUE(j["steps"]["ok"].get<bool>());
  EXPECT_FALSE(j["mtp"]["ok"].get<bool>());
  EXPECT_GT(j["mtp"]["max_rel_error"].get<double>(), 1e-2);
  auto text = RunForge("verify --reference " + Ref("dense-vlm-hf") + " --model " + dir.Sub("m"));
  EXPECT_NE(text.out.find("does NOT reproduce"), std::string::npos) << text.out;
}

TEST(ReferenceCli, CatchesGateAndUpSwapped) {
  TempDir dir;
  CopyTree(FixturePath("dense-text-hf"), dir.Sub("m"));
  const std::string f = dir.Sub("m/model.safetensors");
  std::string gate, up;
  PatchTensor(f, "model.layers.0.mlp.gate_proj.weight",
              [&](uint8_t* d, uint64_t n, const std::vector<int64_t>&) {
                gate.assign(reinterpret_cast<char*>(d), n);
              });
  PatchTensor(f, "model.layers.0.mlp.up_proj.weight",
              [&](uint8_t* d, uint64_t n, const std::vector<int64_t>&) {
                up.assign(reinterpret_cast<char*>(d), n);
                std::memcpy(d, gate.data(), n);
              });
  PatchTensor(f, "model.layers.0.mlp.gate_proj.weight",
              [&](uint8_t* d, uint64_t n, const std::vector<int64_t>&) { std::memcpy(d, up.data(), n); });
  auto r = RunForge("verify --json --reference " + Ref("dense-text-hf") + " --model " + dir.Sub("m"));
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_FALSE(Json(r)["steps"]["ok"].get<bool>());
}

TEST(ReferenceCli, BadReferencesAreOneLineErrors) {
  TempDir dir;
  const std::string model = FixturePath("dense-vlm-hf");
  // Logits of another vocabulary: the tensor is named.
  nlohmann::json j = ReadJson(Ref("dense-vlm-hf"));
  CopyTree(FixturePath("references"), dir.Sub("refs"));
  auto other =
      RunForge("verify --reference " + Ref("dense-vlm-hf") + " --model " + FixturePath("dense-other-hf"));
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("not a token id in [0, 300)"), std::string::npos) << other.err;
  // A logits file that is not there.
  j["logits_file"] = "missing.safetensors";
  WriteJson(dir.Sub("refs/x.tokens.json"), j);
  auto missing = RunForge("verify --reference " + dir.Sub("refs/x.tokens.json") + " --model " + model);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("missing.safetensors"), std::string::npos) << missing.err;
  // A logits file outside the reference's folder is refused.
  j["logits_file"] = "../x.safetensors";
  WriteJson(dir.Sub("refs/y.tokens.json"), j);
  EXPECT_EQ(RunForge("verify --reference " + dir.Sub("refs/y.tokens.json") + " --model " + model).exit_code,
            1);
  // Not a reference at all.
  WriteFile(dir.Sub("refs/z.tokens.json"), "{\"cases\": 3}");
  auto bad = RunForge("verify --reference " + dir.Sub("refs/z.tokens.json") + " --model " + model);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("z.tokens.json"), std::string::npos);
  for (const auto* r : {&other, &missing, &bad}) EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1);
  EXPECT_EQ(RunForge("verify --identity --reference " + Ref("dense-vlm-hf") + " --model " + model).exit_code,
            64);
  EXPECT_EQ(
      RunForge("verify --reference " + Ref("dense-vlm-hf") + " --tolerance 0 --model " + model).exit_code,
      64);
}

}  // namespace
}  // namespace forge
