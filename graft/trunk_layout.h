// The output layout of a checkpoint that keeps its trunk byte for byte: every source shard without dropped
// tensors is carried unchanged (copied or hard-linked), shards holding dropped tensors are rewritten under
// the same file name with the rest. Used by graft (drop the old head), strip-mtp and fix-config.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "forge/ckpt/checkpoint.h"
#include "forge/plan/writer.h"

namespace forge::graft {

struct TrunkLayout {
  plan::Plan plan;                                // tensors of rewritten shards
  plan::OutputLayout layout;                      // rewritten shards + carried files (no index yet)
  std::map<std::string, std::string> weight_map;  // every kept tensor -> its file
  int dropped = 0;
};

Result<TrunkLayout> KeepTrunk(const Checkpoint& src, const std::function<bool(const std::string&)>& drop);

// Adds `head` (already in `plan`) as one new shard `file_name`, listed in the index unless `sidecar`.
Status AddHeadShard(TrunkLayout* t, const std::vector<std::string>& head_names, const std::string& file_name,
                    const std::map<std::string, std::string>& metadata, bool listed_in_index);

// model.safetensors.index.json for the layout's weight_map (total_size from the shard headers).
nlohmann::json IndexFor(const TrunkLayout& t, const Checkpoint& src);

}  // namespace forge::graft
