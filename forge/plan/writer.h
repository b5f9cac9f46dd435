// The streaming writer: materializes a plan into a checkpoint directory.
//
// Design goals: memory bounded by a few tensors in flight (a byte budget, not the model size); every core
// busy; large sequential writes at offsets known from the headers (pwrite), so tensors complete in any
// order; output deterministic (same plan, same bytes); crash safe (StagedDir: temp sibling, fsync,
// rename). Plain copies stream through a small buffer by pread (faster than pwrite from the mapping), and
// computed tensors that split are evaluated and written a write call's worth at a time while in cache;
// the writes to one file take turns (ext4 serializes them anyway, and waiting threads would spin).
// Non-goals: knowing about Qwen (the plan says what to write), modifying sources.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "forge/base/fs_util.h"
#include "forge/plan/expr.h"
#include "forge/plan/shard_layout.h"

namespace forge::plan {

// Tensors are written in pieces of about this size (plain copies always, computed ones where the expression
// splits); each piece's source pages are released once written.
inline constexpr uint64_t kCopyChunkBytes = 64ull << 20;

// An existing file carried into the output unchanged: copied, or hard-linked with `link` (reflinked or
// copied when the filesystem cannot link).
struct CarriedFile {
  std::string source_path;
  std::string name;
};

// Receives a copied carried file's bytes in file order, as read back from the output and found equal to
// the source's (so a manifest can be hashed while copying, with no second pass). Never sees linked files.
class CarriedBytesSink {
 public:
  virtual ~CarriedBytesSink() = default;
  virtual void Update(const uint8_t* data, uint64_t n) = 0;
};

struct WriteOptions {
  uint64_t max_shard_size = kDefaultMaxShardSize;
  unsigned threads = 0;                 // 0: all cores
  uint64_t memory_budget = 1ull << 30;  // bytes of materialized tensors in flight (one may exceed it alone)
  uint64_t chunk_bytes = kCopyChunkBytes;  // size of the pieces big tensors are written in
  bool force = false;
  bool progress = true;
  std::map<std::string, std::string> metadata = {{"format", "pt"}};  // safetensors __metadata__
  std::optional<nlohmann::json> config;                              // written as config.json
  std::vector<std::pair<std::string, std::string>> copy_files;       // source path -> name in output
  Sources sources;                                                   // never written; no overlap allowed
  // Runs on the finished staging directory before it is renamed into place (e.g. write a manifest, check
  // trunk identity); an error aborts the write and nothing appears under the output name.
  std::function<Status(const std::string& staging_dir)> before_commit;
  // Where a copied carried file's bytes go (null, or a null answer: nowhere). Owned by the caller; each
  // sink is used by one thread, the files are copied in parallel with each other and the new shards.
  std::function<CarriedBytesSink*(const CarriedFile&)> carried_sink;
};

// A whole output: new shards (materialized from `plan`), carried shards, and the index to write (null: none).
struct OutputLayout {
  std::vector<ShardPlan> new_shards;
  std::vector<CarriedFile> carried;
  std::optional<nlohmann::json> index;
};

// Copied carried files are read back and compared with the source chunk by chunk as they are written:
// `copied` files are proven byte-identical to their sources.
struct LinkReport {
  int linked = 0, copied = 0;
  uint64_t carried_bytes = 0, copied_bytes = 0;  // copied_bytes: actually written (not linked)
};

struct WriteReport {
  std::string out_dir;
  std::vector<std::pair<std::string, uint64_t>> shards;  // file name, bytes
  uint64_t tensor_bytes = 0;
  uint64_t file_bytes = 0;
  double seconds = 0;
};

Result<WriteReport> WritePlan(const Plan& plan, const std::string& out_dir, const WriteOptions& options);

// Options for an output derived from `src`: src is registered as a source (never written, no overlap) and
// its auxiliary files (tokenizer, templates, processor configs) are carried over.
WriteOptions DerivedFrom(const Checkpoint& src);

// Registers a checkpoint (its directory and every file it reads) as a source of the output.
void AddSource(const Checkpoint& ckpt, Sources* sources);

// The write as JSON: out, tensor_bytes, file_bytes, seconds, shards[{file, bytes}].
nlohmann::json WriteReportJson(const WriteReport& report);

// The general form: `plan` holds every tensor the new shards reference (ShardPlan::plan_index).
Result<WriteReport> WriteLayout(const Plan& plan, const OutputLayout& layout, const std::string& out_dir,
                                const WriteOptions& options, bool link, LinkReport* link_report);

// The sharded index JSON (sorted weight_map, metadata.total_size) for a set of shards.
nlohmann::json BuildIndex(const std::vector<ShardPlan>& shards);

// Pretty JSON as forge writes config/index files (2-space indent, keys sorted, trailing newline).
std::string DumpJson(const nlohmann::json& j);

}  // namespace forge::plan
