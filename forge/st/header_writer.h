// Byte layout of a safetensors file as the reference (Rust) writer produces it:
// tensors ordered by dtype descending (Rust enum order, largest alignment first) then by name, offsets
// assigned contiguously, header = compact JSON with __metadata__ first (omitted when empty) then the
// tensors in data order, padded with spaces to a multiple of 8 so every tensor is aligned.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "forge/st/header.h"

namespace forge::st {

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;
};

// Returns the tensors in file order with data_offsets filled in. Fails on duplicate names or overflow.
Result<std::vector<TensorInfo>> LayoutTensors(const std::vector<TensorSpec>& specs);

// The 8-byte length prefix followed by the padded header JSON.
Result<std::string> SerializeHeader(const std::vector<TensorInfo>& layout,
                                    const std::map<std::string, std::string>& metadata);

}  // namespace forge::st
