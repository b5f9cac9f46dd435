// safetensors header parsing and validation (the rules of the reference Rust reader, STYLE.md §8).
//
// Every check runs inside ParseHeader; there is no separate validate step. Sizes are checked before
// anything depending on them is allocated. Errors name the rule with the Rust error's name in
// parentheses (e.g. "(InvalidOffset)") so users can map them to the reference implementation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "forge/base/dtype.h"
#include "forge/base/status.h"

namespace forge::st {

// The reference reader's MAX_HEADER_SIZE: 100 MB (decimal). A header of exactly this size is accepted.
inline constexpr uint64_t kMaxHeaderSize = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<uint64_t> shape;
  uint64_t begin = 0;  // data_offsets, relative to the start of the byte buffer
  uint64_t end = 0;

  uint64_t nbytes() const { return end - begin; }
  uint64_t numel() const;
};

struct Header {
  uint64_t header_size = 0;  // N, the JSON length
  uint64_t data_start = 0;   // 8 + N: file offset of the byte buffer
  std::vector<TensorInfo> tensors;  // in data-offset order
  std::map<std::string, std::string> metadata;
  std::vector<std::string> unknown_fields;  // "tensor: field" entries the reference reader ignores too

  const TensorInfo* Find(const std::string& name) const;
  void BuildIndex();

 private:
  std::unordered_map<std::string, size_t> index_;
};

// `bytes` holds at least min(file_size, 8 + N) bytes of the file's start.
Result<Header> ParseHeader(const uint8_t* bytes, uint64_t available, uint64_t file_size);

// Checked product of a shape (false on overflow).
bool ShapeNumel(const std::vector<uint64_t>& shape, uint64_t* out);

}  // namespace forge::st
