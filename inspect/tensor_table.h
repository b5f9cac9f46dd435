// One row per tensor for `forge inspect tensors`: name, dtype, shape, bytes, shard, quantization.
#pragma once

#include <string>
#include <vector>

#include "forge/ckpt/checkpoint.h"

namespace forge::inspect {

struct TensorRow {
  std::string name, dtype, shard, quant;  // quant: "affine:4:64" on a packed .weight, "scales"/"biases", or ""
  std::vector<uint64_t> shape;
  uint64_t bytes = 0;
};

std::vector<TensorRow> BuildTensorTable(const Checkpoint& ckpt);

}  // namespace forge::inspect
