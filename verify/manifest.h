// forge-manifest.json: sha1 (OpenSSL EVP) of every tensor's bytes and of every file of a checkpoint
// directory, plus a zlib crc32 and the size of each file for a quick check (`--fast`). Deterministic
// (sorted keys, no timestamps). The manifest never lists itself.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "forge/ckpt/checkpoint.h"

namespace forge::verify {

inline constexpr const char* kManifestName = "forge-manifest.json";

Result<nlohmann::json> BuildManifest(const std::string& dir);

struct ManifestCheck {
  std::vector<std::string> mismatches;  // one line each: what differs
  int files_checked = 0, tensors_checked = 0;
  bool ok() const { return mismatches.empty(); }
};

// Re-checks `dir` against its forge-manifest.json. `fast`: file sizes and crc32 only.
Result<ManifestCheck> CheckManifest(const std::string& dir, bool fast);

// Hex digests of a byte range (exposed for tests against independent values).
// `consumed(offset, length)` is called after each hashed chunk (to release pages of a mapping).
std::string Sha1Hex(const uint8_t* data, uint64_t n, const std::function<void(uint64_t, uint64_t)>& consumed = {});
std::string TensorSha1(const st::SafetensorsFile& f, const st::TensorInfo& t);
std::string Crc32Hex(const uint8_t* data, uint64_t n);

}  // namespace forge::verify
