#include "forge/base/fs_util.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "forge/base/signals.h"

namespace forge {
namespace fs = std::filesystem;

namespace {

fs::path Resolve(const std::string& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  return fs::weakly_canonical(abs, ec);
}

std::string Errno() { return std::strerror(errno); }

// Takes the lock file at `path` (created if needed). A holder unlinks it when done, so after flock the file
// must still be the one at `path`; otherwise it was released and unlinked meanwhile, and we try again.
Result<int> TakeLock(const std::string& path, const std::string& output) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::Invalid("cannot create the output's lock file: " + Errno(), path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return Status::Error(ExitCode::kBusy, "another forge process is writing this output (lock " + path + ")",
                             output);
      }
      return Status::Invalid(std::string("cannot lock: ") + std::strerror(err), path);
    }
    struct stat held, named;
    if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      return fd;
    }
    ::close(fd);
  }
  return Status::Invalid("cannot take the output's lock (it keeps being replaced)", path);
}

// ".NAME.forge-tmp-*" siblings: what runs on the same output that were killed left behind. A killed
// --force swap on a filesystem without atomic exchange may have left the old output as ".NAME.forge-old-*"
// with nothing under the final name: that old output is put back first (nothing the user had is lost).
void RecoverAndRemoveStale(const fs::path& parent, const std::string& hidden, const fs::path& final_path) {
  std::error_code ec;
  std::vector<fs::path> temps, olds;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec)) continue;
    if (name.rfind(hidden + ".forge-tmp-", 0) == 0) temps.push_back(entry.path());
    if (name.rfind(hidden + ".forge-old-", 0) == 0) olds.push_back(entry.path());
  }
  if (!fs::exists(fs::symlink_status(final_path, ec)) && olds.size() == 1) {
    if (::rename(olds[0].c_str(), final_path.c_str()) == 0) olds.clear();
  }
  for (const auto& p : temps) RemoveTree(p.string());
  if (fs::exists(fs::symlink_status(final_path, ec))) {
    for (const auto& p : olds) RemoveTree(p.string());  // replaced by a committed output: no longer needed
  }
}

// Swaps two paths atomically (Linux renameat2 RENAME_EXCHANGE); false where the filesystem cannot.
bool ExchangePaths(const std::string& a, const std::string& b) {
#ifdef RENAME_EXCHANGE
  return ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0;
#else
  (void)a, (void)b;
  return false;
#endif
}

}  // namespace

bool PathIsInside(const std::string& inner, const std::string& outer) {
  fs::path in = Resolve(inner), out = Resolve(outer);
  auto it_in = in.begin();
  for (auto it = out.begin(); it != out.end(); ++it, ++it_in) {
    if (it->empty()) continue;  // trailing separator
    if (it_in == in.end() || *it_in != *it) return false;
  }
  return true;
}

Status CheckAvoidsSources(const std::string& path, const Sources& sources, const char* what) {
  for (const auto& src : sources.dirs) {
    if (PathIsInside(path, src) || PathIsInside(src, path)) {
      return Status::Invalid(std::string(what) + " overlaps a source directory '" + src +
                                 "' (sources are never written to)",
                             path);
    }
  }
  for (const auto& file : sources.files) {
    std::error_code ec;
    const fs::path real = fs::canonical(file, ec);  // where the bytes are: every link followed
    if (ec) continue;                                // a file that does not exist has no bytes to lose
    if (PathIsInside(real.string(), path) || PathIsInside(file, path)) {
      return Status::Invalid(std::string(what) + " would hold or replace the source file '" + file + "'" +
                                 (real != fs::absolute(file, ec).lexically_normal() ? " (it resolves to " + real.string() + ")" : "") +
                                 " (sources are never written to)",
                             path);
    }
  }
  return Status();
}

Result<StagedDir> StagedDir::Create(const std::string& final_path, bool force, const Sources& sources) {
  FORGE_RETURN_IF_ERROR(CheckAvoidsSources(final_path, sources, "output directory"));
  std::error_code ec;
  fs::path fin = Resolve(final_path);
  if (fin.filename().empty()) fin = fin.parent_path();  // "--out newdir/" names newdir
  fs::path parent = fin.parent_path();
  if (!fs::is_directory(parent, ec)) {
    return Status::Invalid("parent directory does not exist", parent.string());
  }
  // Built with append: GCC 12 warns spuriously (-Wrestrict) on "." + std::string + "...".
  std::string hidden = ".";
  hidden.append(fin.filename().string());
  StagedDir d;
  d.final_ = fin.string();
  d.force_ = force;
  d.lock_path_ = (parent / (hidden + ".forge-lock")).string();
  {
    DeferTerminationSignals defer;  // the lock file is created and registered with no signal between
    FORGE_ASSIGN_OR_RETURN(d.lock_fd_, TakeLock(d.lock_path_, d.final_));
    d.signal_slot_ = RegisterStaging(d.lock_path_);
  }
  RecoverAndRemoveStale(parent, hidden, fin);
  if (fs::exists(fs::symlink_status(fin, ec)) && !force) {
    return Status::Invalid("output already exists (use --force to replace it)", final_path);
  }
  std::string tmpl = (parent / (hidden + ".forge-tmp-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  {
    DeferTerminationSignals defer;
    if (::mkdtemp(buf.data()) == nullptr) {
      return Status::Invalid("cannot create temporary directory: " + Errno(), tmpl);
    }
    d.temp_ = buf.data();
    SetStagingDir(d.signal_slot_, d.temp_);
  }
  // mkdtemp makes the directory 0700; the output gets what any new directory would (0777 minus umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  (void)::chmod(d.temp_.c_str(), 0777 & ~mask);
  return d;
}

StagedDir::StagedDir(StagedDir&& other) noexcept
    : final_(std::move(other.final_)), temp_(std::move(other.temp_)), lock_path_(std::move(other.lock_path_)),
      lock_fd_(other.lock_fd_), signal_slot_(other.signal_slot_), force_(other.force_), committed_(other.committed_) {
  other.committed_ = true;  // the moved-from object owns nothing
  other.lock_fd_ = -1;
  other.signal_slot_ = -1;
}

StagedDir::~StagedDir() {
  if (!committed_ && !temp_.empty()) RemoveTree(temp_);
  DeferTerminationSignals defer;  // the lock is removed and unregistered with no signal between
  UnregisterStaging(signal_slot_);
  Unlock();
}

void StagedDir::Unlock() {
  if (lock_fd_ < 0) return;
  (void)::unlink(lock_path_.c_str());  // while still held: a waiter re-checks the inode (TakeLock)
  ::close(lock_fd_);
  lock_fd_ = -1;
}

Status StagedDir::Commit() {
  // Every file (shards, config, index, manifest, carried files, reports) and directory reaches the disk
  // before the rename makes the output visible: a power cut never leaves a committed output with holes.
  FORGE_RETURN_IF_ERROR(FsyncTree(temp_));
  if (!BeginCommit(signal_slot_)) return Status::Invalid("interrupted by a signal; not committed", final_);
  std::error_code ec;
  if (fs::exists(fs::symlink_status(final_, ec))) {
    if (!force_) return Status::Invalid("output appeared while writing; not replaced", final_);
    // One atomic exchange: the new output appears whole and the old one sits at the staging name, removed
    // next (or by the next run if this one is killed first). Nothing is ever missing under the final name.
    if (ExchangePaths(temp_, final_)) {
      committed_ = true;
      RemoveTree(temp_);
    } else {
      // No exchange on this filesystem: two renames. A kill between them leaves the old output as
      // ".NAME.forge-old-*" and nothing under the final name; the next run puts it back.
      std::string old = temp_;
      old.replace(old.rfind(".forge-tmp-"), 11, ".forge-old-");
      if (::rename(final_.c_str(), old.c_str()) != 0) {
        return Status::Invalid("cannot move the existing output aside: " + Errno(), final_);
      }
      if (::rename(temp_.c_str(), final_.c_str()) != 0) {
        Status st = Status::Invalid("cannot rename the finished output into place: " + Errno(), final_);
        (void)::rename(old.c_str(), final_.c_str());
        return st;
      }
      committed_ = true;
      RemoveTree(old);
    }
  } else {
    if (::rename(temp_.c_str(), final_.c_str()) != 0) {
      return Status::Invalid("cannot rename the finished output into place: " + Errno(), final_);
    }
    committed_ = true;
  }
  {
    DeferTerminationSignals defer;
    UnregisterStaging(signal_slot_);
    signal_slot_ = -1;
    Unlock();
  }
  return FsyncPath(fs::path(final_).parent_path().string());
}

Status CopyFileTo(const std::string& src, const std::string& dst) {
  std::error_code ec;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::Invalid("cannot copy to '" + dst + "': " + ec.message(), src);
  return FsyncPath(dst);
}

Status PreadAll(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& path, bool* ended) {
  *ended = false;
  auto* out = static_cast<uint8_t*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Invalid("read failed: " + Errno(), path);
    if (r == 0) {
      *ended = true;
      return Status();
    }
    out += r;
    n -= static_cast<uint64_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status();
}

Status WriteTextFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Invalid("cannot create file: " + Errno(), path);
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = Errno();
      ::close(fd);
      return Status::Invalid("cannot write file: " + why, path);
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0 || errno == EINVAL;
  const std::string why = Errno();
  if (::close(fd) != 0 || !synced) return Status::Invalid("cannot write file: " + why, path);
  return Status();
}

std::string TempSibling(const std::string& path) {
  const fs::path target(path);
  std::string leaf = ".";  // appended: GCC 12 warns spuriously (-Wrestrict) on "." + std::string + "..."
  leaf.append(target.filename().string()).append(".forge-tmp");
  return (target.parent_path() / leaf).string();
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const fs::path target(path);
  const std::string temp = TempSibling(path);
  Status st = WriteTextFile(temp, text);
  if (st.ok() && ::rename(temp.c_str(), path.c_str()) != 0) st = Status::Invalid("cannot rename into place: " + Errno(), path);
  if (!st.ok()) {
    (void)::unlink(temp.c_str());
    return st;
  }
  return FsyncPath(target.parent_path().empty() ? "." : target.parent_path().string());
}

Status FsyncTree(const std::string& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec) || it->is_directory(ec)) FORGE_RETURN_IF_ERROR(FsyncPath(it->path().string()));
  }
  if (ec) return Status::Invalid("cannot list for fsync: " + ec.message(), dir);
  return FsyncPath(dir);
}

Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return Status::Invalid("cannot read: " + ec.message(), path);
  if (size > max_bytes) return Status::Invalid("file is larger than " + std::to_string(max_bytes) + " bytes", path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) return Status::Invalid("cannot read file", path);
  return ss.str();
}

Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Invalid("cannot open for fsync: " + Errno(), path);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) return Status::Invalid(std::string("fsync failed: ") + std::strerror(err), path);
  return Status();
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace forge
