#include "forge/base/fs_util.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/st/test_files.h"

namespace forge {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

int CountEntries(const std::string& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(StagedDir, CommitRenamesIntoPlaceAndLeavesNoTemp) {
  TempDir t;
  auto s = StagedDir::Create(t.Sub("out"), false, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(fs::exists(t.Sub("out")));  // nothing under the final name while writing
  ASSERT_TRUE(WriteTextFile(s->temp_path() + "/a.txt", "x").ok());
  ASSERT_TRUE(s->Commit().ok());
  EXPECT_TRUE(fs::exists(t.Sub("out/a.txt")));
  EXPECT_EQ(CountEntries(t.path()), 1);
}

TEST(StagedDir, AbandonedStagingIsRemoved) {
  TempDir t;
  {
    auto s = StagedDir::Create(t.Sub("out"), false, {});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(WriteTextFile(s->temp_path() + "/a.txt", "x").ok());
  }
  EXPECT_EQ(CountEntries(t.path()), 0);
}

TEST(StagedDir, ExistingOutputNeedsForceAndIsReplaced) {
  TempDir t;
  fs::create_directory(t.Sub("out"));
  ASSERT_TRUE(WriteTextFile(t.Sub("out/old.txt"), "old").ok());
  auto refused = StagedDir::Create(t.Sub("out"), false, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--force"), std::string::npos);
  auto s = StagedDir::Create(t.Sub("out"), true, {});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(WriteTextFile(s->temp_path() + "/new.txt", "new").ok());
  ASSERT_TRUE(s->Commit().ok());
  EXPECT_TRUE(fs::exists(t.Sub("out/new.txt")));
  EXPECT_FALSE(fs::exists(t.Sub("out/old.txt")));
  EXPECT_EQ(CountEntries(t.path()), 1);
}

TEST(StagedDir, OutputOverlappingASourceIsRefusedEvenWithForce) {
  TempDir t;
  fs::create_directory(t.Sub("src"));
  EXPECT_FALSE(StagedDir::Create(t.Sub("src"), true, Sources{{t.Sub("src")}, {}}).ok());
  EXPECT_FALSE(StagedDir::Create(t.Sub("src/inner"), true, Sources{{t.Sub("src")}, {}}).ok());
  EXPECT_FALSE(StagedDir::Create(t.path(), true, Sources{{t.Sub("src")}, {}}).ok());
  EXPECT_TRUE(PathIsInside(t.Sub("src/./x/../y"), t.Sub("src")));
  EXPECT_FALSE(PathIsInside(t.Sub("srcx"), t.Sub("src")));
}

TEST(StagedDir, SecondWriterOfTheSameOutputIsRefusedUntilTheFirstEnds) {
  TempDir t;
  {
    auto first = StagedDir::Create(t.Sub("out"), false, {});
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    auto second = StagedDir::Create(t.Sub("out"), false, {});
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), ExitCode::kBusy);
    EXPECT_NE(second.status().ToString().find("another forge process"), std::string::npos);
    EXPECT_TRUE(fs::exists(first->temp_path()));  // the refused one touched nothing of the first's
    auto other = StagedDir::Create(t.Sub("other"), false, {});  // another output is not locked
    EXPECT_TRUE(other.ok());
  }
  auto third = StagedDir::Create(t.Sub("out"), false, {});
  EXPECT_TRUE(third.ok());
}

TEST(StagedDir, WhatAKilledRunLeftIsRemovedByTheNextRunOnThatOutput) {
  TempDir t;
  fs::create_directory(t.Sub(".out.forge-tmp-AbC123"));
  ASSERT_TRUE(WriteTextFile(t.Sub(".out.forge-tmp-AbC123/model.safetensors"), "partial").ok());
  ASSERT_TRUE(WriteTextFile(t.Sub(".out.forge-lock"), "").ok());  // a dead process's lock: not held
  fs::create_directory(t.Sub(".outer.forge-tmp-Zz9999"));            // another output's staging stays
  auto s = StagedDir::Create(t.Sub("out"), false, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(fs::exists(t.Sub(".out.forge-tmp-AbC123")));
  EXPECT_TRUE(fs::exists(t.Sub(".outer.forge-tmp-Zz9999")));
  ASSERT_TRUE(s->Commit().ok());
  EXPECT_FALSE(fs::exists(t.Sub(".out.forge-lock")));
}

}  // namespace
}  // namespace forge
