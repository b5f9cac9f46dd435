#include "forge/ckpt/hub_cache.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "forge/base/fs_util.h"

namespace forge {
namespace fs = std::filesystem;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : "";
}

bool IsCommit(const std::string& s) {
  static const std::regex hex("^[0-9a-f]{40}$");
  return std::regex_match(s, hex);
}

// The commit a revision names in `repo`: refs/REV's content, a full commit, or a unique commit prefix.
Result<std::string> CommitOf(const fs::path& repo, const std::string& id, const std::string& rev) {
  std::error_code ec;
  const fs::path ref = repo / "refs" / rev;
  if (fs::is_regular_file(ref, ec)) {
    FORGE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(ref.string(), 4096));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
      text.pop_back();
    if (!IsCommit(text)) return Status::Invalid(fmt::format("{}: not a commit hash", rev), ref.string());
    return text;
  }
  std::vector<std::string> snapshots, matches;
  for (auto it = fs::directory_iterator(repo / "snapshots", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    snapshots.push_back(it->path().filename().string());
  }
  std::sort(snapshots.begin(), snapshots.end());
  static const std::regex prefix("^[0-9a-f]{7,40}$");
  if (std::regex_match(rev, prefix)) {
    for (const auto& s : snapshots) {
      if (s.rfind(rev, 0) == 0) matches.push_back(s);
    }
    if (matches.size() == 1) return matches.front();
  }
  std::string have;
  for (const auto& s : snapshots) have += (have.empty() ? "" : ", ") + s.substr(0, 12);
  return Status::Invalid(
      fmt::format("{}@{}: no such revision in the hub cache (refs/{} absent; snapshots: {}); "
                  "download it with `hf download {} --revision {}`",
                  id, rev, rev, have.empty() ? "none" : have, id, rev),
      repo.string());
}

}  // namespace

std::vector<std::string> HubCacheRoots() {
  std::vector<std::string> roots;
  if (!Env("HF_HUB_CACHE").empty()) roots.push_back(Env("HF_HUB_CACHE"));
  if (!Env("HF_HOME").empty()) roots.push_back((fs::path(Env("HF_HOME")) / "hub").string());
  if (!Env("XDG_CACHE_HOME").empty())
    roots.push_back((fs::path(Env("XDG_CACHE_HOME")) / "huggingface" / "hub").string());
  if (!Env("HOME").empty())
    roots.push_back((fs::path(Env("HOME")) / ".cache" / "huggingface" / "hub").string());
  return roots;
}

bool IsHubSnapshot(const std::string& dir) {
  const fs::path p = fs::absolute(dir).lexically_normal();
  fs::path snap = p.has_filename() ? p : p.parent_path();
  return snap.parent_path().filename() == "snapshots" &&
         snap.parent_path().parent_path().filename().string().rfind("models--", 0) == 0;
}

Result<ResolvedInput> ResolveInput(const std::string& arg) {
  std::error_code ec;
  if (arg.empty() || fs::exists(arg, ec)) return ResolvedInput{arg, "", ""};
  // ORG/NAME[@REV]: hub names are letters, digits, '-', '_', '.'; a revision may hold '/' (refs/pr/1).
  static const std::regex id_re(
      R"(^([A-Za-z0-9][A-Za-z0-9_.-]*)/([A-Za-z0-9][A-Za-z0-9_.-]*)(@([A-Za-z0-9_./-]+))?$)");
  std::smatch m;
  if (!std::regex_match(arg, m, id_re) || arg.find("..") != std::string::npos) {
    return Status::Invalid(
        "no such checkpoint directory or file (nor a Hugging Face repo id ORG/NAME[@REVISION])", arg);
  }
  const std::string id = m[1].str() + "/" + m[2].str();
  const std::string rev = m[4].matched ? m[4].str() : "main";
  const std::string folder = "models--" + m[1].str() + "--" + m[2].str();
  const std::vector<std::string> roots = HubCacheRoots();
  for (const auto& root : roots) {
    const fs::path repo = fs::path(root) / folder;
    if (!fs::is_directory(repo / "snapshots", ec)) continue;
    std::string commit;
    auto c = CommitOf(repo, id, rev);
    if (c.ok()) {
      commit = *c;
    } else if (!m[4].matched) {  // no refs/main (a snapshot copied in by hand): one snapshot is unambiguous
      std::vector<std::string> snaps;
      for (auto it = fs::directory_iterator(repo / "snapshots", ec); !ec && it != fs::directory_iterator();
           it.increment(ec))
        snaps.push_back(it->path().filename().string());
      if (snaps.size() != 1) {
        return Status::Invalid(
            fmt::format("{}: no refs/main and {} snapshots in the hub cache: name one, {}@REVISION", id,
                        snaps.size(), id),
            repo.string());
      }
      commit = snaps.front();
    } else {
      return c.status();
    }
    const fs::path snap = repo / "snapshots" / commit;
    if (!fs::is_directory(snap, ec)) {
      return Status::Invalid(
          fmt::format("{}@{}: refs point at commit {} but its snapshot is missing; download it with "
                      "`hf download {} --revision {}`",
                      id, rev, commit, id, commit),
          repo.string());
    }
    return ResolvedInput{snap.string(), id, commit};
  }
  std::string looked;
  for (const auto& r : roots) looked += (looked.empty() ? "" : ", ") + r;
  return Status::Invalid(
      fmt::format("{} is not in the local Hugging Face cache (looked in {}; forge never downloads): "
                  "download it with `hf download {}{}` (or `huggingface-cli download`), set "
                  "HF_HUB_CACHE / HF_HOME, or give its directory",
                  id, looked.empty() ? "no cache: HOME and HF_* unset" : looked, id,
                  m[4].matched ? " --revision " + rev : ""));
}

}  // namespace forge
