#include "forge/plan/file_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace forge::plan {

Status PwriteAll(int fd, const uint8_t* data, uint64_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EFAULT) return Status::Invalid(kSourceShrank);  // the caller names the source
      return Status::Invalid(std::string("write failed: ") + std::strerror(errno), path);
    }
    data += w;
    n -= static_cast<uint64_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status();
}

Status PreadAll(int fd, uint8_t* data, uint64_t n, uint64_t offset, const std::string& path,
                bool* short_read) {
  *short_read = false;
  while (n > 0) {
    const ssize_t r = ::pread(fd, data, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Invalid(std::string("read failed: ") + std::strerror(errno), path);
    if (r == 0) {
      *short_read = true;
      return Status();
    }
    data += r;
    n -= static_cast<uint64_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status();
}

}  // namespace forge::plan
