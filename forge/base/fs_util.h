// Crash-safe output directories and small filesystem helpers.
//
// A StagedDir is written in a temporary sibling (".NAME.forge-tmp-XXXXXX" next to the final path) and
// renamed into place only by Commit(), after every file was fsynced: a killed forge never leaves an output
// under the final name that looks complete. An existing output is only replaced with `force`, and never
// when it is, contains, or lies inside one of the sources.
//
// Two processes writing the same output would race at the rename: a lock file (".NAME.forge-lock", flock)
// held from Create() to the end makes the second refuse at once (ExitCode::kBusy). Holding it, Create()
// also removes what a killed run on the same output left (".NAME.forge-tmp-*" directories).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "forge/base/status.h"

namespace forge {

// What a command reads and so must never write, replace or delete: every input directory (not only --src)
// and every input file, judged by where it resolves as well as by its name (a hub-cache snapshot's files
// are links into ../../blobs/, so replacing the blobs directory would delete the source's bytes).
struct Sources {
  std::vector<std::string> dirs, files;
};

// Exit 1 naming `path` when writing or replacing it could touch a source: it is, lies inside or contains a
// source directory, or a source file resolves to it or below it. `what` names it in the message.
Status CheckAvoidsSources(const std::string& path, const Sources& sources, const char* what);

class StagedDir {
 public:
  static Result<StagedDir> Create(const std::string& final_path, bool force, const Sources& sources);
  StagedDir(StagedDir&& other) noexcept;
  StagedDir& operator=(StagedDir&&) = delete;
  StagedDir(const StagedDir&) = delete;
  ~StagedDir();  // removes the temporary directory unless committed

  const std::string& temp_path() const { return temp_; }
  const std::string& final_path() const { return final_; }
  Status Commit();

 private:
  StagedDir() = default;
  void Unlock();
  std::string final_, temp_, lock_path_;
  int lock_fd_ = -1;
  int signal_slot_ = -1;  // signals.h: what SIGINT/SIGTERM/SIGBUS remove
  bool force_ = false;
  bool committed_ = false;
};

// True when `inner` is `outer` or lies below it (both resolved; `inner` need not exist yet).
bool PathIsInside(const std::string& inner, const std::string& outer);
Status CopyFileTo(const std::string& src, const std::string& dst);
// Reads n bytes at offset (retried on EINTR and short counts); *ended: the file ended before n bytes
// (then the rest of dst is unspecified). Errors name `path`.
Status PreadAll(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& path, bool* ended);
// True when both paths name the same file (one inode: a hard link), so its bytes are identical by construction.
bool SameFile(const std::string& a, const std::string& b);
// Written and fsynced (the directory entry is made durable by the StagedDir commit that follows).
Status WriteTextFile(const std::string& path, const std::string& text);
// ".NAME.forge-tmp" beside `path`: where a file is written before it is renamed over NAME.
std::string TempSibling(const std::string& path);
// Into a temporary sibling, fsynced, renamed over `path`, the directory fsynced: readers see the old
// file or the new one, never a part (forge manifest DIR writes into an existing directory this way).
Status WriteFileAtomically(const std::string& path, const std::string& text);
Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes = 64u << 20);
Status FsyncPath(const std::string& path);
// fsync of every regular file and directory below `dir`, and of `dir`.
Status FsyncTree(const std::string& dir);
void RemoveTree(const std::string& path);

}  // namespace forge
