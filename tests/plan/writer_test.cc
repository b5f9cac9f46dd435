#include "forge/plan/writer.h"

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "tests/st/test_files.h"

namespace forge::plan {
namespace {
namespace fs = std::filesystem;
using namespace testing;

WriteOptions Quiet() {
  WriteOptions w;
  w.progress = false;
  return w;
}

TEST(Writer, ShardedIdentityWriteKeepsEveryTensorAndIndexes) {
  auto src = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  ASSERT_TRUE(src.ok());
  auto p = IdentityPlan(**src);
  ASSERT_TRUE(p.ok());
  TempDir t;
  WriteOptions w = Quiet();
  w.max_shard_size = 100'000;
  w.threads = 3;
  w.memory_budget = 50'000;
  w.config = (*src)->config()->raw;
  w.copy_files = {{FixturePath("moe-vlm-hf/tokenizer.json"), "tokenizer.json"}};
  auto rep = WritePlan(*p, t.Sub("out"), w);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_GT(rep->shards.size(), 5u);

  auto out = Checkpoint::Open(t.Sub("out"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE((*out)->warnings().empty());  // index total_size correct
  ASSERT_EQ((*out)->tensors().size(), (*src)->tensors().size());
  for (const auto& [name, ref] : (*src)->tensors()) {
    auto o = (*out)->Find(name);
    ASSERT_TRUE(o.has_value()) << name;
    EXPECT_EQ(o->info->shape, ref.info->shape);
    ASSERT_EQ(0, std::memcmp(o->file->Data(*o->info), ref.file->Data(*ref.info), ref.info->nbytes())) << name;
  }
  for (const auto& s : (*out)->shards()) {
    uint64_t data = s->file_size() - s->header().data_start;
    bool single = s->header().tensors.size() == 1;
    EXPECT_TRUE(data <= 100'000 || single) << s->path();
    EXPECT_EQ(s->header().data_start % 8, 0u);  // header padded to 8
  }
  auto idx = ReadJson(t.Sub("out/model.safetensors.index.json"));
  std::vector<std::string> keys;
  for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) keys.push_back(it.key());
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(FirstDifference(t.Sub("out/tokenizer.json"), FixturePath("moe-vlm-hf/tokenizer.json")), "");
  EXPECT_EQ(ReadJson(t.Sub("out/config.json")), (*src)->config()->raw);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(t.path())) ++entries;
  EXPECT_EQ(entries, 1);  // no temporary directory left behind
}

TEST(Writer, DeterministicAcrossRunsThreadCountsAndPieceSizes) {
  auto src = Checkpoint::Open(FixturePath("moe36-vlm-hf"));
  ASSERT_TRUE(src.ok());
  // Non-trivial transforms too: every conv1d moved, every norm shifted.
  Plan p;
  for (const auto& [name, ref] : (*src)->tensors()) {
    ExprPtr e = Source(ref).value();
    if (name.find("conv1d") != std::string::npos) e = MoveAxis(e, 2, 1).value();
    if (name.find("layernorm") != std::string::npos) e = AddConstant(e, 1.0, DType::kBF16).value();
    p.tensors.push_back({name, e});
  }
  TempDir t;
  for (unsigned threads : {1u, 4u}) {
    WriteOptions w = Quiet();
    w.threads = threads;
    w.max_shard_size = 300'000;
    if (threads == 4) w.chunk_bytes = 1000;  // every tensor above 1 kB in pieces, as big ones are
    ASSERT_TRUE(WritePlan(p, t.Sub("out" + std::to_string(threads)), w).ok());
  }
  for (const auto& e : fs::directory_iterator(t.Sub("out1"))) {
    EXPECT_EQ(FirstDifference(e.path().string(), t.Sub("out4/") + e.path().filename().string()), "") << e.path();
  }
}

TEST(Writer, RefusesExistingOutputWithoutForce) {
  auto src = Checkpoint::Open(FixturePath("dense-vlm-hf"));
  ASSERT_TRUE(src.ok());
  auto p = IdentityPlan(**src);
  TempDir t;
  fs::create_directory(t.Sub("out"));
  WriteFile(t.Sub("out/keep.txt"), "precious");
  auto r = WritePlan(*p, t.Sub("out"), Quiet());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ReadFile(t.Sub("out/keep.txt")), "precious");
  WriteOptions w = Quiet();
  w.force = true;
  ASSERT_TRUE(WritePlan(*p, t.Sub("out"), w).ok());
  EXPECT_FALSE(fs::exists(t.Sub("out/keep.txt")));
  EXPECT_TRUE(fs::exists(t.Sub("out/model.safetensors")));
}

TEST(Writer, NeverWritesIntoASource) {
  auto src = Checkpoint::Open(FixturePath("dense-vlm-hf"));
  auto p = IdentityPlan(**src);
  WriteOptions w = Quiet();
  w.force = true;
  w.sources.dirs = {FixturePath("dense-vlm-hf")};
  EXPECT_FALSE(WritePlan(*p, FixturePath("dense-vlm-hf/sub"), w).ok());
  EXPECT_FALSE(fs::exists(FixturePath("dense-vlm-hf/sub")));
}

TEST(ShardLayout, ParsesSizes) {
  EXPECT_EQ(ParseByteSize("5GB").value(), 5'000'000'000u);
  EXPECT_EQ(ParseByteSize("2GiB").value(), 2ull << 30);
  EXPECT_EQ(ParseByteSize("123").value(), 123u);
  EXPECT_FALSE(ParseByteSize("five").ok());
  EXPECT_EQ(ParseByteSize("1XB").status().code(), ExitCode::kUsage);
}

}  // namespace
}  // namespace forge::plan
