#include "forge/base/fs_util.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

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

// ".NAME.forge-tmp-*" siblings: what runs on the same output that were killed left behind.
void RemoveStaleTemps(const fs::path& parent, const std::string& leaf_prefix) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(leaf_prefix, 0) == 0 && entry.is_directory(ec)) RemoveTree(entry.path().string());
  }
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
  if (fs::exists(fs::symlink_status(final_path, ec)) && !force) {
    return Status::Invalid("output already exists (use --force to replace it)", final_path);
  }
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
  FORGE_ASSIGN_OR_RETURN(d.lock_fd_, TakeLock(d.lock_path_, d.final_));
  RemoveStaleTemps(parent, hidden + ".forge-tmp-");
  std::string tmpl = (parent / (hidden + ".forge-tmp-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return Status::Invalid("cannot create temporary directory: " + Errno(), tmpl);
  }
  d.temp_ = buf.data();
  // mkdtemp makes the directory 0700; the output gets what any new directory would (0777 minus umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  (void)::chmod(d.temp_.c_str(), 0777 & ~mask);
  return d;
}

StagedDir::StagedDir(StagedDir&& other) noexcept
    : final_(std::move(other.final_)), temp_(std::move(other.temp_)), lock_path_(std::move(other.lock_path_)),
      lock_fd_(other.lock_fd_), force_(other.force_), committed_(other.committed_) {
  other.committed_ = true;  // the moved-from object owns nothing
  other.lock_fd_ = -1;
}

StagedDir::~StagedDir() {
  if (!committed_ && !temp_.empty()) RemoveTree(temp_);
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
  std::error_code ec;
  std::string trash;
  if (fs::exists(fs::symlink_status(final_, ec))) {
    if (!force_) return Status::Invalid("output appeared while writing; not replaced", final_);
    trash = temp_ + ".old";
    if (::rename(final_.c_str(), trash.c_str()) != 0) {
      return Status::Invalid("cannot move the existing output aside: " + Errno(), final_);
    }
  }
  if (::rename(temp_.c_str(), final_.c_str()) != 0) {
    Status st = Status::Invalid("cannot rename the finished output into place: " + Errno(), final_);
    if (!trash.empty()) (void)::rename(trash.c_str(), final_.c_str());
    return st;
  }
  committed_ = true;
  if (!trash.empty()) RemoveTree(trash);
  Unlock();
  return FsyncPath(fs::path(final_).parent_path().string());
}

Status CopyFileTo(const std::string& src, const std::string& dst) {
  std::error_code ec;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::Invalid("cannot copy to '" + dst + "': " + ec.message(), src);
  return FsyncPath(dst);
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

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const fs::path target(path);
  std::string leaf = ".";  // appended: GCC 12 warns spuriously (-Wrestrict) on "." + std::string + "..."
  leaf.append(target.filename().string()).append(".forge-tmp");
  const std::string temp = (target.parent_path() / leaf).string();
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
