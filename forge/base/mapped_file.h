// A read-only memory map of a whole file. Pages are only read when touched; Release() hands consumed
// ranges back to the kernel so that streaming over a large checkpoint does not grow resident memory.
// The descriptor stays open for ReadAt(): streaming a range through a small buffer with pread is 2-3x
// faster than handing the mapping to pwrite (no page faults or TLB misses on the mapping, and the copy's
// source stays in cache). Thread-safe for concurrent reads and Release() calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "forge/base/status.h"

namespace forge {

// What a read of a source says when the file ends early: another process truncated or rewrote it while
// forge read it (a pwrite from its mapping fails with EFAULT there, a load raises SIGBUS: signals.h).
inline constexpr const char* kSourceShrank =
    "the file shrank while forge read it (another process truncated or rewrote a source); nothing was written";

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops resident pages of [offset, offset + length) (page-aligned inward); a hint, never fails.
  void Release(uint64_t offset, uint64_t length) const;

  // Asks the kernel to start reading [offset, offset + length) now (a hint, never fails): a reader about to
  // stream a range gets it in large requests ahead of its small reads, where readahead alone would read a
  // few hundred KB ahead of each of several threads reading different places.
  void WillNeed(uint64_t offset, uint64_t length) const;

  // Reads exactly n bytes at offset through the descriptor. Fails when the file no longer holds them
  // (truncated by another process: the mapping would raise SIGBUS there).
  Status ReadAt(uint64_t offset, void* dst, uint64_t n) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int fd_ = -1;
  int signal_slot_ = -1;  // its entry in the SIGBUS handler's table (signals.h)
};

}  // namespace forge
