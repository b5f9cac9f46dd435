#include "forge/plan/writer.h"

#include <cstring>
#include <filesystem>
#include <random>
#include <map>

#include <fmt/format.h>
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

// Carried files are copied on the pool beside the new shards, each 256 KB read back and compared as it is
// written, and handed to the sink in file order. Whatever the threads and piece size, the copy and the
// bytes the sink saw are the source's, in order; the new shards are written as usual.
TEST(Writer, CarriedFilesCopiedBesideNewShardsReachTheSinkInOrder) {
  struct Collect : CarriedBytesSink {
    std::string bytes;
    void Update(const uint8_t* data, uint64_t n) override { bytes.append(reinterpret_cast<const char*>(data), n); }
  };
  TempDir t;
  std::string a, b;
  std::mt19937_64 rng(4);
  for (int i = 0; i < (1 << 17) + 123; ++i) a.push_back(static_cast<char>(rng()));
  for (int i = 0; i < 1000; ++i) b.push_back(static_cast<char>(rng()));
  fs::create_directory(t.Sub("src"));
  std::string whole_a;  // 4 MB: 16 write calls
  for (int i = 0; i < 32; ++i) whole_a += a;
  WriteFile(t.Sub("src/a.bin"), whole_a);
  WriteFile(t.Sub("src/b.bin"), b);
  WriteFile(t.Sub("src/empty.bin"), "");
  auto src = Checkpoint::Open(FixturePath("dense-vlm-hf"));
  ASSERT_TRUE(src.ok());
  auto p = IdentityPlan(**src);
  ASSERT_TRUE(p.ok());
  OutputLayout layout;
  auto shards = LayoutShards(*p, kDefaultMaxShardSize, {{"format", "pt"}});
  ASSERT_TRUE(shards.ok());
  layout.new_shards = *shards;
  layout.carried = {{t.Sub("src/a.bin"), "a.bin"}, {t.Sub("src/b.bin"), "b.bin"}, {t.Sub("src/empty.bin"), "empty.bin"}};
  for (unsigned threads : {1u, 2u, 3u}) {
    for (uint64_t chunk : {uint64_t{256} << 10, uint64_t{1} << 20, kCopyChunkBytes}) {
      SCOPED_TRACE(fmt::format("threads {} chunk {}", threads, chunk));
      std::map<std::string, Collect> sinks;
      WriteOptions w = Quiet();
      w.threads = threads;
      w.chunk_bytes = chunk;
      w.carried_sink = [&](const CarriedFile& c) -> CarriedBytesSink* { return &sinks[c.name]; };
      const std::string out = t.Sub(fmt::format("out-{}-{}", threads, chunk));
      LinkReport links;
      auto rep = WriteLayout(*p, layout, out, w, /*link=*/false, &links);
      ASSERT_TRUE(rep.ok()) << rep.status().ToString();
      EXPECT_EQ(links.copied, 3);
      EXPECT_TRUE(ReadFile(out + "/a.bin") == whole_a);
      EXPECT_TRUE(sinks["a.bin"].bytes == whole_a);
      EXPECT_EQ(sinks["b.bin"].bytes, b);
      EXPECT_EQ(ReadFile(out + "/b.bin"), b);
      EXPECT_TRUE(sinks["empty.bin"].bytes.empty());
      auto ckpt = Checkpoint::Open(out);
      ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
      EXPECT_EQ((*ckpt)->tensors().size(), (*src)->tensors().size());
    }
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
