#include "forge/ckpt/checkpoint.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/st/test_files.h"

namespace forge {
namespace {
namespace fs = std::filesystem;
using namespace testing;

TEST(Checkpoint, OpensEveryFixture) {
  for (const auto& e : fs::directory_iterator(FORGE_FIXTURES_DIR)) {
    if (!e.is_directory() || !fs::exists(e.path() / "config.json")) continue;  // references/, quantization vectors
    auto c = Checkpoint::Open(e.path().string());
    ASSERT_TRUE(c.ok()) << e.path() << ": " << c.status().ToString();
    EXPECT_TRUE((*c)->config().has_value()) << e.path();
    EXPECT_GT((*c)->tensors().size(), 50u);
    EXPECT_TRUE((*c)->warnings().empty()) << (*c)->warnings().front();
  }
}

TEST(Checkpoint, ShardedIndexAndAuxFiles) {
  auto c = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)->has_index());
  EXPECT_EQ((*c)->shards().size(), 3u);
  auto ref = (*c)->Find("mtp.layers.0.mlp.experts.3.down_proj.weight");
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(fs::path(ref->file->path()).filename(), "model-00003-of-00003.safetensors");
  const auto& aux = (*c)->aux_files();
  EXPECT_NE(std::find(aux.begin(), aux.end(), "tokenizer.json"), aux.end());
  EXPECT_NE(std::find(aux.begin(), aux.end(), "video_preprocessor_config.json"), aux.end());
  EXPECT_EQ(std::find(aux.begin(), aux.end(), "config.json"), aux.end());
}

// Same weights written by two different writers (our script's sharding vs transformers' save_pretrained):
// the reader must hand out identical bytes for the shared tensors.
TEST(Checkpoint, SameTensorsFromTwoWritersHaveEqualBytes) {
  auto a = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  auto b = Checkpoint::Open(FixturePath("moe-vlm-hf-perexpert"));
  ASSERT_TRUE(a.ok() && b.ok());
  int compared = 0;
  for (const auto& [name, ra] : (*a)->tensors()) {
    auto rb = (*b)->Find(name);
    if (!rb) continue;
    ASSERT_EQ(ra.info->nbytes(), rb->info->nbytes()) << name;
    ASSERT_EQ(0, std::memcmp(ra.file->Data(*ra.info), rb->file->Data(*rb->info), ra.info->nbytes())) << name;
    ++compared;
  }
  EXPECT_GT(compared, 80);
}

class BrokenIndex : public ::testing::Test {
 protected:
  void SetUp() override { CopyTree(FixturePath("moe-vlm-hf"), dir()); }
  std::string dir() const { return tmp_.Sub("ckpt"); }
  nlohmann::json Index() const { return ReadJson(dir() + "/model.safetensors.index.json"); }
  void SetIndex(const nlohmann::json& j) { WriteJson(dir() + "/model.safetensors.index.json", j); }
  void ExpectOpenFails(const std::string& fragment) {
    auto c = Checkpoint::Open(dir());
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().ToString().find(fragment), std::string::npos) << c.status().ToString();
    EXPECT_EQ(c.status().code(), ExitCode::kInvalidInput);
  }
  TempDir tmp_;
};

TEST_F(BrokenIndex, MissingShard) {
  auto j = Index();
  j["weight_map"]["mtp.fc.weight"] = "model-00009-of-00009.safetensors";
  SetIndex(j);
  ExpectOpenFails("does not exist");
}
TEST_F(BrokenIndex, ParentDirectoryEscape) {
  auto j = Index();
  j["weight_map"]["mtp.fc.weight"] = "../moe-vlm-hf/model-00003-of-00003.safetensors";
  SetIndex(j);
  ExpectOpenFails("outside the checkpoint directory");
}
TEST_F(BrokenIndex, AbsolutePath) {
  auto j = Index();
  j["weight_map"]["mtp.fc.weight"] = "/etc/passwd";
  SetIndex(j);
  ExpectOpenFails("outside the checkpoint directory");
}
TEST_F(BrokenIndex, TensorNotInNamedShard) {
  auto j = Index();
  j["weight_map"]["mtp.fc.weight"] = "model-00001-of-00003.safetensors";
  SetIndex(j);
  ExpectOpenFails("does not contain it");
}
TEST_F(BrokenIndex, ShardTensorNotListed) {
  auto j = Index();
  j["weight_map"].erase("mtp.fc.weight");
  SetIndex(j);
  ExpectOpenFails("does not list");
}
TEST_F(BrokenIndex, WrongTotalSizeIsOnlyAWarning) {
  auto j = Index();
  j["metadata"]["total_size"] = 12;
  SetIndex(j);
  auto c = Checkpoint::Open(dir());
  ASSERT_TRUE(c.ok());
  ASSERT_EQ((*c)->warnings().size(), 1u);
}

TEST(Checkpoint, UnindexedTensorInTwoFilesIsRefused) {
  TempDir t;
  fs::create_directory(t.Sub("c"));
  const char* h = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  WriteFile(t.Sub("c/one.safetensors"), SafetensorsBytes(h, 1));
  WriteFile(t.Sub("c/two.safetensors"), SafetensorsBytes(h, 1));
  auto c = Checkpoint::Open(t.Sub("c"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().ToString().find("also in"), std::string::npos);
}

TEST(Checkpoint, MissingDirectory) {
  auto c = Checkpoint::Open("/nonexistent/forge");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ExitCode::kInvalidInput);
}

}  // namespace
}  // namespace forge
