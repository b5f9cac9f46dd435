// The writer's layout against files written by the reference implementation (Python safetensors, i.e. the
// Rust serializer, which produced the fixtures): same tensors + same metadata => the same bytes.
#include <gtest/gtest.h>

#include "forge/ckpt/checkpoint.h"
#include "forge/plan/shard_layout.h"
#include "forge/plan/writer.h"
#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;

class ReferenceLayout : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceLayout, HeaderBytesEqualTheReferenceWriters) {
  const std::string file = FixturePath(GetParam());
  auto ckpt = Checkpoint::Open(file);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  auto p = plan::IdentityPlan(**ckpt);
  ASSERT_TRUE(p.ok());
  auto shards = plan::LayoutShards(*p, plan::kDefaultMaxShardSize, (*ckpt)->shards()[0]->header().metadata);
  ASSERT_TRUE(shards.ok());
  ASSERT_EQ(shards->size(), 1u);
  const std::string original = ReadFile(file);
  const std::string& header = (*shards)[0].header;
  EXPECT_EQ(original.substr(0, header.size()), header);
  EXPECT_EQ(original.size(), (*shards)[0].file_size());
}

TEST_P(ReferenceLayout, RewrittenFileIsByteIdentical) {
  const std::string file = FixturePath(GetParam());
  auto ckpt = Checkpoint::Open(file);
  ASSERT_TRUE(ckpt.ok());
  auto p = plan::IdentityPlan(**ckpt);
  ASSERT_TRUE(p.ok());
  TempDir t;
  plan::WriteOptions w;
  w.progress = false;
  w.metadata = (*ckpt)->shards()[0]->header().metadata;
  auto rep = plan::WritePlan(*p, t.Sub("out"), w);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(FirstDifference(t.Sub("out/model.safetensors"), file), "");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceLayout,
                         ::testing::Values("dense-vlm-hf/model.safetensors", "moe-vlm-hf/model-00001-of-00003.safetensors",
                                           "moe-vlm-hf/model-00003-of-00003.safetensors",
                                           "dense-vlm-mlx-q4/model.safetensors", "dense-text-hf/model.safetensors"));

}  // namespace
}  // namespace forge
