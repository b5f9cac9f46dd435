// forge-manifest.json: sha1 (OpenSSL EVP) of every tensor's bytes and of every file of a checkpoint
// directory, plus a zlib crc32 and the size of each file for a quick check (`--fast`). Deterministic
// (sorted keys, no timestamps). The manifest never lists itself, nor the two files written about the
// weights after them: the model card (README.md, which quotes the manifest's sha1s) and the verify record
// (`forge verify --identity --record` adds to both later without touching a weight).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "forge/ckpt/checkpoint.h"

namespace forge::verify {

inline constexpr const char* kManifestName = "forge-manifest.json";
inline constexpr const char* kCardName = "README.md";
inline constexpr const char* kVerifyRecordName = "forge-verify.json";

// A file's manifest entry (size, sha1, crc32) made from its bytes as they stream past in order (a copy
// hands them over, see plan::CarriedBytesSink), so a file written once is not read again to be hashed.
class StreamedFileDigest {
 public:
  StreamedFileDigest();
  ~StreamedFileDigest();
  StreamedFileDigest(const StreamedFileDigest&) = delete;
  StreamedFileDigest& operator=(const StreamedFileDigest&) = delete;
  void Update(const uint8_t* data, uint64_t n);
  void Finish();  // after the last Update: sha1() and crc32() as hex
  uint64_t bytes() const { return bytes_; }
  const std::string& sha1() const { return sha1_; }
  const std::string& crc32() const { return crc32_; }

 private:
  struct Hash;
  Hash* hash_;
  unsigned long crc_;
  uint64_t bytes_ = 0;
  std::string sha1_, crc32_;
};

// A file of the output that is a proven copy of `source_path`, digested while it was copied.
struct StreamedCopy {
  const StreamedFileDigest* digest;
  std::string source_path;
};

// `link_sources`: directories whose files the output may hard-link (graft --link). A linked file is not
// read: its entry (and its tensors') comes from that source's own manifest when it has one for the same
// bytes, else the entry records only the size and "linked_from", and `forge manifest DIR` hashes it later.
// `streamed`: files (by name) digested while copied; one whose byte count differs from the file on disk is
// hashed again. A streamed file whose source has a forge manifest recording the same sha1 inherits that
// manifest's tensor entries (the same bytes, already hashed); every other tensor is hashed here. Files and
// tensors are hashed on `threads` threads (0: all cores). Without `hash_tensors` the manifest lists files
// only (no "tensors": half the hashing; `forge manifest DIR` adds them), as convert and quantize write it.
Result<nlohmann::json> BuildManifest(const std::string& dir, const std::vector<std::string>& link_sources = {},
                                     const std::map<std::string, StreamedCopy>& streamed = {}, unsigned threads = 0,
                                     bool hash_tensors = true);

struct ManifestCheck {
  std::vector<std::string> mismatches;  // one line each: what differs
  int files_checked = 0, tensors_checked = 0;
  std::vector<std::string> size_only_files;  // linked files the manifest records by size alone: sizes checked, bytes not
  int size_only() const { return static_cast<int>(size_only_files.size()); }
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
