// A checkpoint directory opened lazily: config.json, the safetensors shards (mmap, headers only), the
// sharded index when present, and the auxiliary files writers carry over. A single .safetensors file
// path is accepted too (pure tensor-level mode, no config).
//
// Index rules (STYLE.md §8.5): every weight_map entry exists in its shard; every tensor of a listed shard
// is in weight_map, once, pointing at that shard; shard names stay inside the directory. Thread-safe
// after Open.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "forge/ckpt/config.h"
#include "forge/st/reader.h"

namespace forge {

struct TensorRef {
  const st::SafetensorsFile* file = nullptr;
  const st::TensorInfo* info = nullptr;
};

class Checkpoint {
 public:
  static Result<std::unique_ptr<Checkpoint>> Open(const std::string& path);

  const std::string& dir() const { return dir_; }
  const std::optional<ModelConfig>& config() const { return config_; }
  bool has_index() const { return has_index_; }
  const std::vector<std::unique_ptr<st::SafetensorsFile>>& shards() const { return shards_; }

  // All tensors, sorted by name.
  const std::map<std::string, TensorRef>& tensors() const { return tensors_; }
  std::optional<TensorRef> Find(const std::string& name) const;
  uint64_t total_bytes() const { return total_bytes_; }
  // True when some tensor is MLX-quantized (has a ".scales" companion).
  bool HasQuantizedTensors() const;

  // Regular files besides config.json, the index and shards (tokenizer*, chat templates, ...), relative.
  const std::vector<std::string>& aux_files() const { return aux_files_; }
  // .safetensors files present in the directory but not part of the checkpoint (not in the index).
  const std::vector<std::string>& unlisted_safetensors() const { return unlisted_; }
  // Non-fatal findings (e.g. index total_size differs from the tensors' sum).
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Every file the checkpoint consists of, as reached from dir(): shards (sidecar included), config.json,
  // the index, auxiliary files and forge-manifest.json when present.
  std::vector<std::string> Files() const;
  // The MTPLX sidecar file holding extra (MTP) tensors, "" when none (config mlx_lm_extra_tensors.mtp_file).
  const std::string& sidecar() const { return sidecar_; }

 private:
  Status LoadIndexed(const std::string& index_path);
  Status LoadUnindexed(const std::vector<std::string>& files);
  Status AddShard(const std::string& rel_name);
  Status LoadSidecar(const std::string& config_path);
  // Every file, links followed, lies in the directory (or its hub-cache repository): exit 1 otherwise.
  Status CheckContainment() const;

  std::string dir_;
  std::optional<ModelConfig> config_;
  bool has_index_ = false;
  bool single_file_ = false;  // opened as one .safetensors path
  std::vector<std::unique_ptr<st::SafetensorsFile>> shards_;
  std::map<std::string, TensorRef> tensors_;
  uint64_t total_bytes_ = 0;
  std::vector<std::string> aux_files_, unlisted_, warnings_;
  std::string sidecar_;
  Status LoadImplicitSidecar();
};

inline constexpr const char* kIndexFileName = "model.safetensors.index.json";

}  // namespace forge
