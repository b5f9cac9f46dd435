// The output layout of a checkpoint that keeps its trunk byte for byte: every source shard without dropped
// tensors is carried unchanged (copied or hard-linked), shards holding dropped tensors are rewritten under
// the same file name with the rest. Used by graft (drop the old head), strip-mtp and fix-config.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

#include "forge/ckpt/checkpoint.h"
#include "forge/plan/writer.h"

namespace forge::graft {

struct TrunkLayout {
  plan::Plan plan;                                // tensors of rewritten shards
  plan::OutputLayout layout;                      // rewritten shards + carried files (no index yet)
  std::map<std::string, std::string> weight_map;  // every kept tensor -> its file
  std::set<std::string> dropped;                  // source tensors left out
};

Result<TrunkLayout> KeepTrunk(const Checkpoint& src, const std::function<bool(const std::string&)>& drop);

// One shard `file_name` holding the named tensors of `plan` (its plan_index points into `plan`): the head's
// own file, indexed or a sidecar outside the index (MTPLX's mtp.safetensors).
Result<plan::ShardPlan> ShardOf(const plan::Plan& plan, const std::vector<std::string>& names,
                                const std::string& file_name, const std::map<std::string, std::string>& metadata);

// Adds `head` (already in `t->plan`) as one new shard `file_name`, listed in the index unless a sidecar.
Status AddHeadShard(TrunkLayout* t, const std::vector<std::string>& head_names, const std::string& file_name,
                    const std::map<std::string, std::string>& metadata, bool listed_in_index);

// model.safetensors.index.json for the layout's weight_map (total_size from the shard headers).
nlohmann::json IndexFor(const TrunkLayout& t, const Checkpoint& src);

}  // namespace forge::graft
