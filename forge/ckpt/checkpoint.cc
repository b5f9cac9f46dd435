#include "forge/ckpt/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "forge/base/fs_util.h"
#include "forge/base/json_text.h"
#include "forge/base/utf8.h"
#include "forge/ckpt/tensor_names.h"

namespace forge {
namespace fs = std::filesystem;

namespace {

// A shard name from an index must be a relative path that stays inside the checkpoint directory.
bool SafeRelativeName(const std::string& name) {
  if (name.empty() || name[0] == '/' || name.find('\0') != std::string::npos || name.find('\\') != std::string::npos) {
    return false;
  }
  for (const auto& part : fs::path(name)) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

// Where a checkpoint's files may live once every link is followed: the directory itself and, for a
// Hugging Face hub-cache snapshot (".../models--ORG--NAME/snapshots/REV", whose files are links into
// "../../blobs/"), that repository's folder.
std::vector<fs::path> AllowedRoots(const std::string& dir) {
  std::error_code ec;
  const fs::path real = fs::canonical(dir, ec);
  if (ec) return {};
  std::vector<fs::path> roots = {real};
  const fs::path snapshots = real.parent_path(), repo = snapshots.parent_path();
  if (snapshots.filename() == "snapshots" && repo.filename().string().rfind("models--", 0) == 0) roots.push_back(repo);
  return roots;
}

bool Below(const fs::path& p, const fs::path& root) {
  auto it = p.begin();
  for (const auto& part : root) {
    if (it == p.end() || *it != part) return false;
    ++it;
  }
  return true;
}

}  // namespace

Status Checkpoint::CheckContainment() const {
  const auto roots = AllowedRoots(dir_);
  if (roots.empty()) return Status();
  const fs::path dir(dir_);
  for (const auto& file : Files()) {
    std::error_code ec;
    // A regular file named directly in the (resolved) directory is inside it: one lstat, no canonical().
    if (fs::path(file).parent_path() == dir && fs::is_regular_file(fs::symlink_status(file, ec))) continue;
    const fs::path real = fs::canonical(file, ec);
    if (ec) continue;  // vanished: reading it fails with its own message
    if (std::none_of(roots.begin(), roots.end(), [&](const fs::path& r) { return Below(real, r); })) {
      return Status::Invalid(fmt::format("resolves to {}, outside the checkpoint directory{} (links must stay "
                                         "inside it)",
                                         real.string(), roots.size() > 1 ? " and its hub-cache repository" : ""),
                             file);
    }
  }
  return Status();
}

bool Checkpoint::HasQuantizedTensors() const {
  return std::any_of(tensors_.begin(), tensors_.end(), [](const auto& kv) { return EndsWith(kv.first, ".scales"); });
}

std::vector<std::string> Checkpoint::Files() const {
  std::vector<std::string> out;
  for (const auto& s : shards_) out.push_back(s->path());
  for (const char* name : {"config.json", kIndexFileName, "forge-manifest.json"}) {
    std::error_code ec;
    if (fs::exists(fs::path(dir_) / name, ec)) out.push_back((fs::path(dir_) / name).string());
  }
  for (const auto& a : aux_files_) out.push_back((fs::path(dir_) / a).string());
  return out;
}

std::optional<TensorRef> Checkpoint::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return std::nullopt;
  return it->second;
}

Status Checkpoint::AddShard(const std::string& rel_name) {
  FORGE_ASSIGN_OR_RETURN(auto file, st::SafetensorsFile::Open((fs::path(dir_) / rel_name).string()));
  shards_.push_back(std::move(file));
  return Status();
}

Status Checkpoint::LoadIndexed(const std::string& index_path) {
  FORGE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path));
  FORGE_ASSIGN_OR_RETURN(nlohmann::json index, ParseJsonFileText(text, index_path, "index"));
  auto wm = index.is_object() ? index.find("weight_map") : index.end();
  if (!index.is_object() || wm == index.end() || !wm->is_object()) {
    return Status::Invalid("index has no 'weight_map' object", index_path);
  }
  std::map<std::string, std::string> weight_map;
  std::set<std::string> shard_names;  // sorted, each once: linear-logarithmic in index entries
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) return Status::Invalid("weight_map value is not a string", index_path, it.key());
    const std::string shard = it->get<std::string>();
    if (!SafeRelativeName(shard)) {
      return Status::Invalid(fmt::format("weight_map names shard '{}' outside the checkpoint directory", shard),
                             index_path, it.key());
    }
    weight_map[it.key()] = shard;
    shard_names.insert(shard);
  }
  std::map<std::string, const st::SafetensorsFile*> by_name;
  for (const auto& s : shard_names) {
    std::error_code ec;
    if (!fs::is_regular_file(fs::path(dir_) / s, ec)) {
      return Status::Invalid(fmt::format("weight_map names shard '{}' which does not exist", s), index_path);
    }
    FORGE_RETURN_IF_ERROR(AddShard(s));
    by_name[s] = shards_.back().get();
  }
  for (const auto& [name, shard] : weight_map) {
    const st::SafetensorsFile* f = by_name[shard];
    const st::TensorInfo* info = f->Find(name);
    if (info == nullptr) {
      return Status::Invalid(fmt::format("index maps this tensor to '{}', which does not contain it", shard),
                             index_path, name);
    }
    tensors_[name] = {f, info};
  }
  for (const auto& f : shards_) {
    for (const auto& t : f->header().tensors) {
      auto it = weight_map.find(t.name);
      if (it == weight_map.end()) {
        return Status::Invalid("shard holds a tensor the index does not list", f->path(), t.name);
      }
      if (by_name[it->second] != f.get()) {
        return Status::Invalid(fmt::format("tensor is in two shards (index points to '{}')", it->second), f->path(),
                               t.name);
      }
    }
  }
  uint64_t sum = 0;
  for (const auto& [_, ref] : tensors_) sum += ref.info->nbytes();
  auto meta = index.find("metadata");
  if (meta != index.end() && meta->is_object() && meta->contains("total_size")) {
    const auto& ts = (*meta)["total_size"];
    if (!ts.is_number_unsigned() || ts.get<uint64_t>() != sum) {
      warnings_.push_back(fmt::format("{}: metadata.total_size {} differs from the tensors' {} bytes",
                                      kIndexFileName, ts.dump(), sum));
    }
  }
  return Status();
}

// MTPLX's sidecar: config.json "mlx_lm_extra_tensors": {"mtp_file": "mtp.safetensors"} names a file of
// extra tensors (the MTP head) next to the shards, outside the index.
Status Checkpoint::LoadSidecar(const std::string& config_path) {
  const auto& raw = config_->raw;
  auto extra = raw.find("mlx_lm_extra_tensors");
  if (extra == raw.end() || !extra->is_object() || !extra->contains("mtp_file")) return LoadImplicitSidecar();
  const auto& file = (*extra)["mtp_file"];
  if (!file.is_string() || !SafeRelativeName(file.get<std::string>())) {
    return Status::Invalid("mlx_lm_extra_tensors.mtp_file must name a file inside the checkpoint", config_path);
  }
  sidecar_ = file.get<std::string>();
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(dir_) / sidecar_, ec)) {
    return Status::Invalid(fmt::format("mlx_lm_extra_tensors.mtp_file names '{}', which does not exist", sidecar_), config_path);
  }
  FORGE_RETURN_IF_ERROR(AddShard(sidecar_));
  const auto& f = shards_.back();
  for (const auto& t : f->header().tensors) {
    auto [it, inserted] = tensors_.emplace(t.name, TensorRef{f.get(), &t});
    if (!inserted) return Status::Invalid("sidecar tensor is also in the shards", f->path(), t.name);
  }
  return Status();
}

// Without mlx_lm_extra_tensors, MTPLX takes the first of these that exists, and oMLX merges mtp.safetensors,
// when the shards hold no MTP tensor (docs/LAYOUTS.md): forge reads the same file, and says so.
Status Checkpoint::LoadImplicitSidecar() {
  for (const auto& [name, ref] : tensors_) {
    if (SplitTensorName(name).part == ModelPart::kMtp) return Status();
  }
  std::set<std::string> loaded;
  for (const auto& f : shards_) loaded.insert(fs::path(f->path()).lexically_relative(dir_).generic_string());
  for (const char* candidate : {"mtp.safetensors", "mtp/weights.safetensors", "model-mtp.safetensors"}) {
    std::error_code ec;
    if (loaded.count(candidate) || !fs::is_regular_file(fs::path(dir_) / candidate, ec)) continue;
    FORGE_RETURN_IF_ERROR(AddShard(candidate));
    const auto& f = shards_.back();
    for (const auto& t : f->header().tensors) {
      auto [it, inserted] = tensors_.emplace(t.name, TensorRef{f.get(), &t});
      if (!inserted) return Status::Invalid("sidecar tensor is also in the shards", f->path(), t.name);
    }
    sidecar_ = candidate;
    warnings_.push_back(fmt::format("{} read as the MTP sidecar (config.json has no mlx_lm_extra_tensors; MTPLX and "
                                    "oMLX read it the same way)", candidate));
    return Status();
  }
  return Status();
}

Status Checkpoint::LoadUnindexed(const std::vector<std::string>& files) {
  for (const auto& f : files) FORGE_RETURN_IF_ERROR(AddShard(f));
  for (const auto& f : shards_) {
    for (const auto& t : f->header().tensors) {
      auto [it, inserted] = tensors_.emplace(t.name, TensorRef{f.get(), &t});
      if (!inserted) {
        return Status::Invalid(fmt::format("tensor is also in '{}'", it->second.file->path()), f->path(), t.name);
      }
    }
  }
  return Status();
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path) {
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  std::error_code ec;
  if (fs::is_regular_file(path, ec) && EndsWith(path, ".safetensors")) {
    c->dir_ = fs::path(path).parent_path().string();
    if (c->dir_.empty()) c->dir_ = ".";
    c->single_file_ = true;
    FORGE_RETURN_IF_ERROR(c->LoadUnindexed({fs::path(path).filename().string()}));
  } else {
    if (!fs::is_directory(path, ec)) return Status::Invalid("not a checkpoint directory or .safetensors file", path);
    c->dir_ = path;
    std::vector<std::string> st_files;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      std::string name = e.path().filename().string();
      if (!e.is_regular_file() || name.empty() || name[0] == '.') continue;
      // Every file name ends up in JSON (index, manifest, --json): a name JSON cannot carry is refused here,
      // once, rather than by whichever writer meets it first.
      if (!IsValidUtf8(name)) {
        return Status::Invalid(fmt::format("file name '{}' is not valid UTF-8 (rename it: forge lists every file "
                                           "in JSON)", EscapeBytes(name)),
                               path);
      }
      if (EndsWith(name, ".safetensors")) st_files.push_back(name);
      // A manifest or verify record describes these weights: an output (other weights) never carries one.
      else if (name != "config.json" && name != kIndexFileName && name != "forge-manifest.json" &&
               name != "forge-verify.json") {
        c->aux_files_.push_back(name);
      }
    }
    if (ec) return Status::Invalid("cannot list directory: " + ec.message(), path);
    std::sort(st_files.begin(), st_files.end());
    std::sort(c->aux_files_.begin(), c->aux_files_.end());
    const std::string index_path = (fs::path(path) / kIndexFileName).string();
    if (fs::exists(index_path, ec)) {
      c->has_index_ = true;
      FORGE_RETURN_IF_ERROR(c->LoadIndexed(index_path));
    } else if (std::find(st_files.begin(), st_files.end(), "model.safetensors") != st_files.end()) {
      FORGE_RETURN_IF_ERROR(c->LoadUnindexed({"model.safetensors"}));
    } else {
      FORGE_RETURN_IF_ERROR(c->LoadUnindexed(st_files));
    }
    if (c->shards_.empty()) return Status::Invalid("no .safetensors files in directory", path);
    const std::string config_path = (fs::path(path) / "config.json").string();
    if (fs::exists(config_path, ec)) {
      FORGE_ASSIGN_OR_RETURN(ModelConfig cfg, LoadModelConfig(config_path));
      c->config_ = std::move(cfg);
      FORGE_RETURN_IF_ERROR(c->LoadSidecar(config_path));
    }
    std::set<std::string> used;  // after the sidecar: a sidecar is read, not unlisted
    for (const auto& s : c->shards_) used.insert(fs::path(s->path()).filename().string());
    for (const auto& f : st_files) {
      if (!used.count(f)) c->unlisted_.push_back(f);
    }
  }
  if (!c->single_file_) FORGE_RETURN_IF_ERROR(c->CheckContainment());
  for (const auto& [_, ref] : c->tensors_) c->total_bytes_ += ref.info->nbytes();
  return c;
}

}  // namespace forge
