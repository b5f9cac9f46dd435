#include "verify/trunk_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "forge/base/fs_util.h"
#include "forge/ckpt/tensor_names.h"

namespace forge::verify {
namespace {

constexpr uint64_t kChunk = 64ull << 20;
bool IsMtp(const std::string& name) { return SplitTensorName(name).part == ModelPart::kMtp; }

}  // namespace

TrunkCheck CheckTrunk(const Checkpoint& src, const Checkpoint& out, const std::set<VerifiedCopy>& copies,
                      const std::set<std::string>& left_out) {
  TrunkCheck c;
  std::map<std::pair<std::string, std::string>, bool> same_file;  // (out file, src file) -> one inode
  for (const auto& [name, ref] : out.tensors()) {
    if (IsMtp(name)) continue;
    auto s = src.Find(name);
    if (!s) {
      c.mismatches.push_back(fmt::format("{}: not in the source", name));
      continue;
    }
    if (s->info->dtype != ref.info->dtype || s->info->shape != ref.info->shape) {
      c.mismatches.push_back(fmt::format("{}: dtype or shape differs from the source", name));
      continue;
    }
    auto key = std::make_pair(ref.file->path(), s->file->path());
    auto it = same_file.find(key);
    if (it == same_file.end()) it = same_file.emplace(key, SameFile(key.first, key.second)).first;
    const uint64_t a_off = ref.file->header().data_start + ref.info->begin,
                   b_off = s->file->header().data_start + s->info->begin;
    const bool same_offset = a_off == b_off;
    if (it->second && same_offset) {
      ++c.compared;
      ++c.linked;
      continue;
    }
    if (same_offset && copies.count({std::filesystem::path(key.first).filename().string(), key.second}) > 0) {
      ++c.compared;
      ++c.copied;
      continue;
    }
    const uint8_t *a = ref.file->Data(*ref.info), *b = s->file->Data(*s->info);
    for (uint64_t off = 0; off < ref.info->nbytes(); off += kChunk) {
      const uint64_t n = std::min(kChunk, ref.info->nbytes() - off);
      const bool same = std::memcmp(a + off, b + off, n) == 0;
      ref.file->ReleaseRange(a_off + off, n);  // keep resident memory at a chunk, whatever the tensor size
      s->file->ReleaseRange(b_off + off, n);
      if (!same) {
        c.mismatches.push_back(
            fmt::format("{}: bytes differ from the source (first differing chunk at {})", name, off));
        break;
      }
    }
    ++c.compared;
    c.bytes_compared += ref.info->nbytes();
  }
  for (const auto& [name, ref] : src.tensors()) {
    if (!IsMtp(name) && !left_out.count(name) && !out.Find(name))
      c.mismatches.push_back(fmt::format("{}: missing from the output", name));
  }
  return c;
}

}  // namespace forge::verify
