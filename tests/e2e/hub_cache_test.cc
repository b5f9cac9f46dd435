// `--src` / `--mtp-from` (and every other checkpoint input) as Hugging Face repo ids, resolved offline in a
// fake hub cache built here the way huggingface_hub lays one out: models--ORG--NAME/refs/REV holding a
// commit, snapshots/COMMIT/* relative links into ../../blobs/. Roots in order ($HF_HUB_CACHE, $HF_HOME/hub,
// ~/.cache/huggingface/hub), revisions by branch, tag, commit and prefix, the errors that say how to
// download, links inside the cache followed and a link out of the repo folder refused.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "tests/st/test_files.h"

namespace forge {
namespace {
namespace fs = std::filesystem;
using namespace testing;

// Environment variables set for one test, the previous values put back after it.
class Env {
 public:
  void Set(const char* name, const std::string& value) {
    Save(name);
    ::setenv(name, value.c_str(), 1);
  }
  void Unset(const char* name) {
    Save(name);
    ::unsetenv(name);
  }
  ~Env() {
    for (const auto& [name, value] : saved_) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

 private:
  void Save(const char* name) {
    if (saved_.count(name)) return;
    const char* v = std::getenv(name);
    saved_[name] = v ? std::optional<std::string>(v) : std::nullopt;
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

// Adds `fixture` to the cache `root` as repo `org/name` at `commit`, each file a blob behind a relative
// link; `ref` (a branch or tag) points at it when given.
std::string AddSnapshot(const std::string& root, const std::string& org, const std::string& name,
                        const char* fixture, const std::string& commit, const std::string& ref) {
  const fs::path repo = fs::path(root) / ("models--" + org + "--" + name);
  const fs::path snap = repo / "snapshots" / commit;
  fs::create_directories(snap);
  fs::create_directories(repo / "blobs");
  for (const auto& e : fs::directory_iterator(FixturePath(fixture))) {
    if (!e.is_regular_file()) continue;
    const std::string blob = commit.substr(0, 8) + "-" + e.path().filename().string();
    fs::copy_file(e.path(), repo / "blobs" / blob, fs::copy_options::overwrite_existing);
    fs::create_symlink("../../blobs/" + blob, snap / e.path().filename());
  }
  if (!ref.empty()) {
    fs::create_directories((repo / "refs" / ref).parent_path());
    WriteFile((repo / "refs" / ref).string(), commit);
  }
  return snap.string();
}

const std::string kCommitA = "0123456789abcdef0123456789abcdef01234567";
const std::string kCommitB = "89abcdef0123456789abcdef0123456789abcdef";

// Which fixture was opened: the MoE one's model_type says so.
bool IsMoe(const nlohmann::json& inspect) { return inspect.value("model_type", "") == "qwen3_5_moe"; }

nlohmann::json Inspect(const std::string& arg) {
  auto r = RunForge("inspect config --json " + arg);
  EXPECT_EQ(r.exit_code, 0) << arg << ": " << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
}

TEST(HubCache, RepoIdsResolveInTheCacheByBranchTagCommitAndPrefix) {
  TempDir t;
  Env env;
  const std::string cache = t.Sub("cache");
  env.Set("HF_HUB_CACHE", cache);
  env.Unset("HF_HOME");
  // Two revisions of one repo: main a dense model, tag v2 a MoE one, so which was opened shows.
  AddSnapshot(cache, "Example-Org", "Tiny", "dense-vlm-hf", kCommitA, "main");
  AddSnapshot(cache, "Example-Org", "Tiny", "moe-vlm-hf", kCommitB, "v2");
  EXPECT_FALSE(IsMoe(Inspect("Example-Org/Tiny")));
  EXPECT_TRUE(IsMoe(Inspect("Example-Org/Tiny@v2")));
  EXPECT_TRUE(IsMoe(Inspect("Example-Org/Tiny@" + kCommitB)));
  EXPECT_FALSE(IsMoe(Inspect("Example-Org/Tiny@" + kCommitA.substr(0, 8))));

  // A graft from two repo ids: the card names both, the trunk is the cached fine-tune's.
  AddSnapshot(cache, "Example-Org", "FineTune", "dense-vlm-finetune-nomtp", kCommitA, "main");
  auto g = RunForge("graft -q --src Example-Org/FineTune --mtp-from Example-Org/Tiny --out " + t.Sub("g"));
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(
      RunForge("verify --trunk-of " + FixturePath("dense-vlm-finetune-nomtp") + " " + t.Sub("g")).exit_code,
      0);
  const std::string card = ReadFile(t.Sub("g/README.md"));
  EXPECT_NE(card.find("base_model:\n- \"Example-Org/FineTune\"\n- \"Example-Org/Tiny\"\n"), std::string::npos)
      << card;

  // A path always wins over a repo id of the same spelling: a local Example-Org/Tiny (MoE) is opened, not
  // the cache's main (dense).
  fs::create_directories(t.Sub("Example-Org"));
  CopyTree(FixturePath("moe-vlm-hf"), t.Sub("Example-Org/Tiny"));
  const fs::path cwd = fs::current_path();
  fs::current_path(t.path());
  const bool local_moe = IsMoe(Inspect("Example-Org/Tiny"));
  fs::current_path(cwd);
  EXPECT_TRUE(local_moe);
}

TEST(HubCache, RootsAreSearchedInHuggingFaceOrder) {
  TempDir t;
  Env env;
  env.Unset("HF_HUB_CACHE");
  env.Unset("HF_HOME");
  env.Unset("XDG_CACHE_HOME");
  env.Set("HOME", t.Sub("home"));
  AddSnapshot(t.Sub("home/.cache/huggingface/hub"), "Org", "M", "dense-vlm-hf", kCommitA, "main");
  EXPECT_FALSE(IsMoe(Inspect("Org/M")));  // found under ~/.cache/huggingface/hub
  // $HF_HOME/hub comes before ~/.cache, $HF_HUB_CACHE before both.
  env.Set("HF_HOME", t.Sub("hfhome"));
  AddSnapshot(t.Sub("hfhome/hub"), "Org", "M", "moe-vlm-hf", kCommitB, "main");
  EXPECT_TRUE(IsMoe(Inspect("Org/M")));
  env.Set("HF_HUB_CACHE", t.Sub("hubcache"));
  AddSnapshot(t.Sub("hubcache"), "Org", "M", "dense-vlm-hf", kCommitA, "main");
  EXPECT_FALSE(IsMoe(Inspect("Org/M")));
}

TEST(HubCache, MissingRepoOrRevisionSaysHowToDownload) {
  TempDir t;
  Env env;
  env.Set("HF_HUB_CACHE", t.Sub("cache"));
  AddSnapshot(t.Sub("cache"), "Org", "M", "dense-vlm-hf", kCommitA, "main");
  auto missing = RunForge("graft --src Qwen/Qwen3.5-4B --mtp-from Org/M --out " + t.Sub("o"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("Qwen/Qwen3.5-4B is not in the local Hugging Face cache"), std::string::npos)
      << missing.err;
  EXPECT_NE(missing.err.find("hf download Qwen/Qwen3.5-4B"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find(t.Sub("cache")), std::string::npos) << "says where it looked: " << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << "one line";
  auto rev = RunForge("inspect config Org/M@v9");
  EXPECT_EQ(rev.exit_code, 1);
  EXPECT_NE(rev.err.find("no such revision"), std::string::npos) << rev.err;
  EXPECT_NE(rev.err.find("hf download Org/M --revision v9"), std::string::npos) << rev.err;
  EXPECT_FALSE(fs::exists(t.Sub("o")));
}

// Links inside the repo folder (snapshots -> blobs) are followed; a snapshot file linked out of it, to a
// copy of the same bytes elsewhere, is refused by name.
TEST(HubCache, LinksLeavingTheRepoFolderAreRefused) {
  TempDir t;
  Env env;
  env.Set("HF_HUB_CACHE", t.Sub("cache"));
  const std::string snap = AddSnapshot(t.Sub("cache"), "Org", "M", "dense-vlm-hf", kCommitA, "main");
  fs::create_directories(t.Sub("elsewhere"));
  fs::copy_file(FixturePath("dense-vlm-hf/model.safetensors"), t.Sub("elsewhere/model.safetensors"));
  fs::remove(snap + "/model.safetensors");
  fs::create_symlink(t.Sub("elsewhere/model.safetensors"), snap + "/model.safetensors");
  auto r = RunForge("convert -q --src Org/M --out " + t.Sub("o"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("outside"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(t.Sub("o")));
  // verify --record never writes into the shared cache.
  fs::remove(snap + "/model.safetensors");
  fs::create_symlink("../../blobs/" + kCommitA.substr(0, 8) + "-model.safetensors",
                     snap + "/model.safetensors");
  auto rec = RunForge("verify --identity --record --max-tokens 2 --model Org/M");
  EXPECT_EQ(rec.exit_code, 64) << rec.err;
  EXPECT_FALSE(fs::exists(snap + "/forge-verify.json"));
}

}  // namespace
}  // namespace forge
