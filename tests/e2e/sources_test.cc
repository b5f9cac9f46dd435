// Sources are never written, replaced or deleted, whichever input they are (--src, --mtp-from) and however
// their files are reached (a hub-cache snapshot's links into blobs/); reports follow the output's rules.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;
namespace fs = std::filesystem;

// Every file below `dir` (links followed) with its bytes.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (fs::is_regular_file(e.path())) m[e.path().string()] = ReadFile(e.path().string());
  }
  return m;
}

void ExpectRefused(const std::string& args, const std::vector<std::string>& mentions) {
  auto r = RunForge(args);
  EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& m : mentions) EXPECT_NE(r.err.find(m), std::string::npos) << m << " in " << r.err;
}

TEST(Sources, GraftNeverWritesIntoOrOverTheDonor) {
  TempDir t;
  const std::string src = t.Sub("ft"), base = t.Sub("base");
  CopyTree(FixturePath("dense-vlm-finetune-nomtp"), src);
  CopyTree(FixturePath("dense-vlm-hf"), base);
  const auto before = Snapshot(base), src_before = Snapshot(src);
  const std::string graft = "graft --quiet --src " + src + " --mtp-from " + base;
  ExpectRefused(graft + " --out " + base + " --force", {base, "source"});
  ExpectRefused(graft + " --out " + base + "/sub", {"source"});
  ExpectRefused(graft + " --out " + t.path() + " --force", {"source"});
  EXPECT_EQ(Snapshot(base), before);
  EXPECT_EQ(Snapshot(src), src_before);
  EXPECT_FALSE(fs::exists(base + "/sub"));
}

TEST(Sources, ReportFollowsTheOutputRules) {
  TempDir t;
  const std::string src = t.Sub("src");
  CopyTree(FixturePath("dense-vlm-hf"), src);
  const auto before = Snapshot(src);
  const std::string q = "quantize --quiet --src " + src + " --mode affine --bits 4";
  // Onto a source's own file, even with --force: refused before anything is written.
  ExpectRefused(q + " --out " + t.Sub("o1") + " --force --report " + src + "/config.json",
                {"--report", "source"});
  EXPECT_FALSE(fs::exists(t.Sub("o1")));
  EXPECT_EQ(Snapshot(src), before);
  // An existing report is kept without --force, and the run writes nothing.
  WriteFile(t.Sub("old.json"), "keep me");
  ExpectRefused(q + " --out " + t.Sub("o2") + " --report " + t.Sub("old.json"), {"old.json", "--force"});
  EXPECT_EQ(ReadFile(t.Sub("old.json")), "keep me");
  EXPECT_FALSE(fs::exists(t.Sub("o2")));
  // With --force it is replaced, and a report inside the output lands with it.
  auto ok = RunForge(q + " --out " + t.Sub("o3") + " --force --report " + t.Sub("old.json"));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(ReadJson(t.Sub("old.json"))["totals"]["quantized_tensors"].get<int>() > 0);
  auto inside = RunForge(q + " --out " + t.Sub("o4") + " --report " + t.Sub("o4/fidelity.json"));
  ASSERT_EQ(inside.exit_code, 0) << inside.err;
  EXPECT_TRUE(ReadJson(t.Sub("o4/fidelity.json")).contains("tensors"));
  // A report that cannot be written fails the run before the output is committed.
  auto bad = RunForge(q + " --out " + t.Sub("o5") + " --report " + t.Sub("no/such/dir/r.json"));
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_FALSE(fs::exists(t.Sub("o5")));
  for (const auto& e : fs::directory_iterator(t.path()))
    EXPECT_EQ(e.path().filename().string().find(".forge-tmp"), std::string::npos) << e.path();
}

// The hub cache: snapshots/REV/* are relative links to ../../blobs/HASH. Replacing blobs/ (or a directory
// above it) would delete the source's bytes although no source *directory* name overlaps the output.
TEST(Sources, ForceNeverReplacesWhereSourceFilesResolve) {
  TempDir t;
  const std::string repo = t.Sub("models--Qwen--tiny"), snap = repo + "/snapshots/abc123",
                    blobs = repo + "/blobs";
  fs::create_directories(snap);
  fs::create_directories(blobs);
  int n = 0;
  for (const auto& e : fs::directory_iterator(FixturePath("dense-vlm-hf"))) {
    const std::string blob = "blob" + std::to_string(n++);
    fs::copy_file(e.path(), blobs + "/" + blob);
    fs::create_symlink("../../blobs/" + blob, snap + "/" + e.path().filename().string());
  }
  const auto before = Snapshot(blobs);
  for (const std::string& out : {blobs, repo, t.Sub("models--Qwen--tiny/blobs/../blobs")}) {
    ExpectRefused("reshard --quiet --src " + snap + " --out " + out + " --force",
                  {"source", out == repo ? "overlaps a source directory" : "resolves to"});
    ExpectRefused("convert --quiet --src " + snap + " --out " + out + " --force", {"source"});
  }
  EXPECT_EQ(Snapshot(blobs), before);
  // An unrelated output is fine, and reads the bytes through the links.
  auto ok = RunForge("reshard --quiet --src " + snap + " --out " + t.Sub("copy"));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ReadFile(t.Sub("copy/model.safetensors")),
            ReadFile(FixturePath("dense-vlm-hf/model.safetensors")));
}

// A hub-cache snapshot of `fixture`: every file a relative link into ../../blobs/. Returns the snapshot.
std::string HubSnapshot(const TempDir& t, const char* fixture, const std::string& repo_name) {
  const std::string repo = t.Sub(repo_name), snap = repo + "/snapshots/rev1", blobs = repo + "/blobs";
  fs::create_directories(snap);
  fs::create_directories(blobs);
  int n = 0;
  for (const auto& e : fs::directory_iterator(FixturePath(fixture))) {
    const std::string blob = "sha" + std::to_string(n++);
    fs::copy_file(e.path(), blobs + "/" + blob);
    fs::create_symlink("../../blobs/" + blob, snap + "/" + e.path().filename().string());
  }
  return snap;
}

// --link on hub-cache links: the output holds hard links to the blobs themselves (regular files, same
// inode), never links that would dangle from the output's directory.
TEST(Sources, LinkFollowsHubCacheLinksToTheRealFile) {
  TempDir t;
  const std::string ft = HubSnapshot(t, "moe-vlm-finetune-nomtp", "models--x--ft");
  const std::string base = HubSnapshot(t, "moe-vlm-hf", "models--x--base");
  const std::string out = t.Sub("g"), stripped = t.Sub("s");
  auto g = RunForge("graft -q --link --src " + ft + " --mtp-from " + base + " --out " + out);
  ASSERT_EQ(g.exit_code, 0) << g.err;
  auto s = RunForge("strip-mtp -q --link --src " + out + " --out " + stripped);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  int linked = 0;
  for (const auto& e : fs::directory_iterator(ft)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".safetensors") continue;
    for (const std::string& dir : {out, stripped}) {
      ASSERT_TRUE(fs::exists(dir + "/" + name)) << dir << "/" << name;
      EXPECT_FALSE(fs::is_symlink(dir + "/" + name)) << dir << "/" << name;
      EXPECT_TRUE(fs::equivalent(dir + "/" + name, fs::canonical(e.path()))) << "not a hard link: " << name;
      ++linked;
    }
  }
  EXPECT_GT(linked, 0);
  EXPECT_EQ(RunForge("verify --trunk-of " + ft + " " + out).exit_code, 0);
}

// A shard reached through a link that leaves the checkpoint (and its hub-cache repository) is refused.
TEST(Sources, LinksOutOfTheCheckpointAreRefused) {
  TempDir t;
  const std::string elsewhere = t.Sub("elsewhere"), ckpt = t.Sub("ckpt");
  fs::create_directories(elsewhere);
  fs::create_directories(ckpt);
  fs::copy_file(FixturePath("dense-vlm-hf/model.safetensors"), elsewhere + "/model.safetensors");
  fs::copy_file(FixturePath("dense-vlm-hf/config.json"), ckpt + "/config.json");
  // Through a linked subdirectory named by the index...
  fs::create_directory_symlink(elsewhere, ckpt + "/sub");
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  auto header = ReadFile(elsewhere + "/model.safetensors");
  {
    uint64_t n = 0;
    std::memcpy(&n, header.data(), 8);
    const auto parsed = nlohmann::json::parse(header.substr(8, n));  // kept: items() refers to it
    for (const auto& [name, v] : parsed.items()) {
      if (name != "__metadata__") index["weight_map"][name] = "sub/model.safetensors";
    }
  }
  WriteJson(ckpt + "/model.safetensors.index.json", index);
  ExpectRefused("inspect config " + ckpt, {"sub/model.safetensors", "outside the checkpoint directory"});
  // ...and through a shard that is itself an absolute link out.
  fs::remove(ckpt + "/model.safetensors.index.json");
  fs::remove(ckpt + "/sub");
  fs::create_symlink(elsewhere + "/model.safetensors", ckpt + "/model.safetensors");
  ExpectRefused("convert --src " + ckpt + " --out " + t.Sub("o"),
                {"model.safetensors", "resolves to", "outside"});
  EXPECT_FALSE(fs::exists(t.Sub("o")));
}

}  // namespace
}  // namespace forge
