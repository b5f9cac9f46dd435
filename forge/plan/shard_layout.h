// Splits a plan into output shards: tensors in name order, a new shard whenever the next tensor would
// push the current one past max_shard_size (a tensor larger than the limit gets a shard of its own).
// Within a shard, tensors follow the reference writer's order (header_writer.h). Deterministic.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "forge/plan/expr.h"
#include "forge/st/header_writer.h"

namespace forge::plan {

struct ShardPlan {
  std::string file_name;  // model.safetensors or model-00001-of-00003.safetensors
  std::vector<st::TensorInfo> layout;      // file order, offsets relative to the data buffer
  std::vector<size_t> plan_index;          // layout[i] comes from plan.tensors[plan_index[i]]
  std::string header;                      // length prefix + padded JSON
  uint64_t file_size() const { return header.size() + (layout.empty() ? 0 : layout.back().end); }
};

inline constexpr uint64_t kDefaultMaxShardSize = 5'000'000'000;  // the hub's 5 GB (decimal)

Result<std::vector<ShardPlan>> LayoutShards(const Plan& plan, uint64_t max_shard_size,
                                            const std::map<std::string, std::string>& metadata);

// "5GB", "500MB", "2GiB", "1234" (bytes) -> bytes.
Result<uint64_t> ParseByteSize(const std::string& text);

}  // namespace forge::plan
