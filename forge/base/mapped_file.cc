#include "forge/base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "forge/base/fs_util.h"
#include "forge/base/signals.h"

namespace forge {

namespace {

// The soft descriptor limit raised to the hard one, less a reserve for outputs, sockets and the like.
int DescriptorsToKeep() {
  static const int limit = [] {
    struct rlimit r {};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 256;
    if (r.rlim_cur < r.rlim_max) {
      r.rlim_cur = r.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &r);
      ::getrlimit(RLIMIT_NOFILE, &r);
    }
    const rlim_t cur = r.rlim_cur == RLIM_INFINITY ? (1u << 20) : r.rlim_cur;
    return static_cast<int>(std::min<rlim_t>(cur, 1u << 20) * 3 / 4);
  }();
  return limit;
}

}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Invalid(std::string("cannot open: ") + std::strerror(errno), path);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Invalid("not a regular file", path);
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Status::Invalid(std::string("cannot mmap: ") + std::strerror(err), path);
    }
    f->data_ = static_cast<const uint8_t*>(p);
    f->signal_slot_ = RegisterMapping(p, f->size_, f->path_.c_str());
  }
  // Descriptors are kept while they are plentiful: a checkpoint of tens of thousands of shards must still
  // open, its later files then read through the mapping instead.
  if (fd < DescriptorsToKeep()) {
    f->fd_ = fd;
  } else {
    ::close(fd);
  }
  return f;
}

MappedFile::~MappedFile() {
  UnregisterMapping(signal_slot_);
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

Status MappedFile::ReadAt(uint64_t offset, void* dst, uint64_t n) const {
  if (offset > size_ || n > size_ - offset) return Status::Invalid("read past the end of the file", path_);
  if (fd_ < 0) {  // no descriptor kept: the mapping (a truncated file then raises SIGBUS, see signals.h)
    if (n) std::memcpy(dst, data_ + offset, n);
    return Status();
  }
  bool ended = false;
  FORGE_RETURN_IF_ERROR(PreadAll(fd_, dst, n, offset, path_, &ended));
  if (ended) return Status::Invalid(kSourceShrank, path_);
  return Status();
}

void MappedFile::WillNeed(uint64_t offset, uint64_t length) const {
  if (length == 0 || offset >= size_) return;
  const uint64_t n = offset + length > size_ ? size_ - offset : length;
  if (fd_ >= 0) {
    (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_WILLNEED);
  } else if (data_ != nullptr) {
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)), begin = offset / page * page;
    ::madvise(const_cast<uint8_t*>(data_) + begin, offset + n - begin, MADV_WILLNEED);
  }
}

void MappedFile::Release(uint64_t offset, uint64_t length) const {
  if (data_ == nullptr || length == 0 || offset >= size_) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t begin = (offset + page - 1) / page * page;
  uint64_t end = offset + length > size_ ? size_ : offset + length;
  end = end / page * page;
  if (end <= begin) return;
  ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
}

}  // namespace forge
