// model.safetensors.index.json as any bytes, beside one valid shard: Checkpoint::Open either refuses it
// or opens a checkpoint whose every tensor comes from a file inside the directory (no "../" or absolute
// path escapes, no shard the index merely names).
#include <cstdint>
#include <filesystem>
#include <string>

#include "forge/ckpt/checkpoint.h"
#include "fuzz/fuzz_support.h"

namespace {

const std::string& CheckpointDir() {
  static const std::string dir = [] {
    std::string d = forge::fuzz::ScratchDir() + "/ckpt";
    std::filesystem::create_directories(d);
    // One shard with two tensors, the names the seed indexes use.
    const std::string header =
        R"({"a.weight":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},)"
        R"("b.weight":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
    std::string bytes(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
    bytes += header + std::string(16, '\1');
    forge::fuzz::WriteBytes(d + "/model-00001-of-00001.safetensors", reinterpret_cast<const uint8_t*>(bytes.data()),
                            bytes.size());
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = CheckpointDir();
  forge::fuzz::WriteBytes(dir + "/model.safetensors.index.json", data, size);
  auto ckpt = forge::Checkpoint::Open(dir);
  if (!ckpt.ok()) return 0;
  const auto root = std::filesystem::weakly_canonical(dir);
  for (const auto& [name, ref] : (*ckpt)->tensors()) {
    const auto file = std::filesystem::weakly_canonical(ref.file->path());
    if (file.parent_path() != root) forge::fuzz::Violation("tensor " + name + " read from " + file.string());
  }
  return 0;
}
