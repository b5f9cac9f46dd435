// The streaming writer: materializes a plan into a checkpoint directory.
//
// Design goals: memory bounded by a few tensors in flight (a byte budget, not the model size); every core
// busy; large sequential writes at offsets known from the headers (pwrite), so tensors complete in any
// order; output deterministic (same plan, same bytes); crash safe (StagedDir: temp sibling, fsync,
// rename). Plain copies stream from the source mapping in chunks whose pages are released after use.
// Non-goals: knowing about Qwen (the plan says what to write), modifying sources.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "forge/plan/expr.h"
#include "forge/plan/shard_layout.h"

namespace forge::plan {

// Plain copies stream in chunks of this size; each chunk's source pages are released once written.
inline constexpr uint64_t kCopyChunkBytes = 64ull << 20;

struct WriteOptions {
  uint64_t max_shard_size = kDefaultMaxShardSize;
  unsigned threads = 0;                 // 0: all cores
  uint64_t memory_budget = 1ull << 30;  // bytes of materialized tensors in flight (one may exceed it alone)
  bool force = false;
  bool progress = true;
  std::map<std::string, std::string> metadata = {{"format", "pt"}};  // safetensors __metadata__
  std::optional<nlohmann::json> config;                              // written as config.json
  std::vector<std::pair<std::string, std::string>> copy_files;       // source path -> name in output
  std::vector<std::string> source_dirs;                              // never written; no overlap allowed
};

struct WriteReport {
  std::string out_dir;
  std::vector<std::pair<std::string, uint64_t>> shards;  // file name, bytes
  uint64_t tensor_bytes = 0;
  uint64_t file_bytes = 0;
  double seconds = 0;
};

Result<WriteReport> WritePlan(const Plan& plan, const std::string& out_dir, const WriteOptions& options);

// The sharded index JSON (sorted weight_map, metadata.total_size) for a set of shards.
nlohmann::json BuildIndex(const std::vector<ShardPlan>& shards);

// Pretty JSON as forge writes config/index files (2-space indent, keys sorted, trailing newline).
std::string DumpJson(const nlohmann::json& j);

}  // namespace forge::plan
