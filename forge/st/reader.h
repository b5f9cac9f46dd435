// A safetensors file opened lazily: mmap + header parse; tensor bytes are zero-copy views into the map.
// Thread-safe after Open.
#pragma once

#include <memory>
#include <string>

#include "forge/base/mapped_file.h"
#include "forge/st/header.h"

namespace forge::st {

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::string& path() const { return map_->path(); }
  uint64_t file_size() const { return map_->size(); }
  const Header& header() const { return header_; }
  const TensorInfo* Find(const std::string& name) const { return header_.Find(name); }

  // The tensor's bytes inside the mapping (not aligned: read with memcpy-style loads).
  const uint8_t* Data(const TensorInfo& t) const { return map_->data() + header_.data_start + t.begin; }
  // Hands the tensor's pages back to the kernel once consumed (keeps RSS flat while streaming).
  void Release(const TensorInfo& t) const { map_->Release(header_.data_start + t.begin, t.nbytes()); }
  void ReleaseRange(uint64_t file_offset, uint64_t length) const { map_->Release(file_offset, length); }
  // Copies n bytes at a file offset (MappedFile::ReadAt): for streaming through a small buffer.
  Status ReadRange(uint64_t file_offset, void* dst, uint64_t n) const { return map_->ReadAt(file_offset, dst, n); }
  void WillNeedRange(uint64_t file_offset, uint64_t length) const { map_->WillNeed(file_offset, length); }

 private:
  std::unique_ptr<MappedFile> map_;
  Header header_;
};

}  // namespace forge::st
