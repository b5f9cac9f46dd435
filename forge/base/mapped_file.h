// A read-only memory map of a whole file. Pages are only read when touched; Release() hands consumed
// ranges back to the kernel so that streaming over a large checkpoint does not grow resident memory.
// Thread-safe for concurrent reads and Release() calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "forge/base/status.h"

namespace forge {

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

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int signal_slot_ = -1;  // its entry in the SIGBUS handler's table (signals.h)
};

}  // namespace forge
