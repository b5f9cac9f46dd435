#include "verify/manifest.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "forge/base/fs_util.h"
#include "forge/base/json_text.h"
#include "forge/base/utf8.h"
#include "forge/base/mapped_file.h"
#include "forge/base/thread_pool.h"

namespace forge::verify {
namespace fs = std::filesystem;

namespace {

// Hashes in chunks so that huge files and tensors never need more than the mapping.
constexpr uint64_t kChunk = 64ull << 20;

struct FileDigest {
  uint64_t bytes = 0;
  std::string sha1, crc32;
};

// One sha1 (OpenSSL EVP) fed in pieces, its digest as lowercase hex.
class Sha1 {
 public:
  Sha1() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha1(), nullptr); }
  ~Sha1() { EVP_MD_CTX_free(ctx_); }
  Sha1(const Sha1&) = delete;
  Sha1& operator=(const Sha1&) = delete;
  void Update(const uint8_t* data, uint64_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
    return hex;
  }

 private:
  EVP_MD_CTX* ctx_;
};

Result<FileDigest> DigestFile(const std::string& path, bool with_sha1) {
  FORGE_ASSIGN_OR_RETURN(auto map, MappedFile::Open(path));
  FileDigest d;
  d.bytes = map->size();
  uLong crc = crc32(0L, Z_NULL, 0);
  Sha1 sha1;
  for (uint64_t off = 0; off < d.bytes; off += kChunk) {
    const uint64_t n = std::min(kChunk, d.bytes - off);
    crc = crc32(crc, map->data() + off, static_cast<uInt>(n));
    if (with_sha1) sha1.Update(map->data() + off, n);
    map->Release(off, n);
  }
  d.crc32 = fmt::format("{:08x}", static_cast<uint32_t>(crc));
  if (with_sha1) d.sha1 = sha1.Hex();
  return d;
}

// The files a manifest covers: regular, not hidden, not the manifest itself.
Result<std::vector<std::string>> ListFiles(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::Invalid("not a directory", dir);
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!it->is_regular_file(ec) || name.empty() || name[0] == '.' || name == kManifestName || name == kCardName ||
        name == kVerifyRecordName)
      continue;
    if (!IsValidUtf8(name)) {
      return Status::Invalid(fmt::format("file name '{}' is not valid UTF-8 (a manifest lists names in JSON)",
                                         EscapeBytes(name)), dir);
    }
    out.push_back(name);
  }
  if (ec) return Status::Invalid("cannot list directory: " + ec.message(), dir);
  std::sort(out.begin(), out.end());
  return out;
}

// A manifest is input like any other: every entry is checked for shape before it is trusted, and file
// names must be plain names in the directory (an entry "../x" would have forge read outside it).
Status ValidateManifest(const nlohmann::json& m, const std::string& path) {
  auto bad = [&](const std::string& key, const std::string& why) {
    return Status::Invalid(fmt::format("manifest entry '{}': {}", key, why), path);
  };
  if (!m.is_object() || !m.contains("files") || !m["files"].is_object()) return Status::Invalid("manifest has no 'files' object", path);
  for (auto it = m["files"].begin(); it != m["files"].end(); ++it) {
    const std::string& name = it.key();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\\') != std::string::npos || name.find('\0') != std::string::npos) {
      return bad(name, "must be a file name inside the directory");
    }
    const auto& e = *it;
    if (!e.is_object()) return bad(name, "must be an object");
    if (!e.contains("bytes") || !e["bytes"].is_number_unsigned()) return bad(name, "'bytes' must be a non-negative integer");
    for (const char* key : {"sha1", "crc32", "linked_from"}) {
      if (e.contains(key) && !e[key].is_string()) return bad(name, fmt::format("'{}' must be a string", key));
    }
    if (e.contains("sha1") != e.contains("crc32")) return bad(name, "has one of 'sha1' and 'crc32' without the other");
  }
  if (m.contains("tensors")) {
    if (!m["tensors"].is_object()) return Status::Invalid("manifest 'tensors' must be an object", path);
    for (auto it = m["tensors"].begin(); it != m["tensors"].end(); ++it) {
      if (!it->is_object() || !it->contains("sha1") || !(*it)["sha1"].is_string()) {
        return bad(it.key(), "a tensor entry must be an object with a string 'sha1'");
      }
    }
  }
  return Status();
}

}  // namespace

struct StreamedFileDigest::Hash : Sha1 {};

StreamedFileDigest::StreamedFileDigest() : hash_(new Hash), crc_(::crc32(0L, Z_NULL, 0)) {}

StreamedFileDigest::~StreamedFileDigest() { delete hash_; }

void StreamedFileDigest::Update(const uint8_t* data, uint64_t n) {
  crc_ = crc32_z(crc_, data, n);
  hash_->Update(data, n);
  bytes_ += n;
}

void StreamedFileDigest::Finish() {
  crc32_ = fmt::format("{:08x}", static_cast<uint32_t>(crc_));
  sha1_ = hash_->Hex();
}

// sha1 of a tensor inside a mapped file, releasing its pages chunk by chunk.
std::string TensorSha1(const st::SafetensorsFile& f, const st::TensorInfo& t) {
  return Sha1Hex(f.Data(t), t.nbytes(), [&](uint64_t off, uint64_t n) {
    f.ReleaseRange(f.header().data_start + t.begin + off, n);
  });
}

std::string Sha1Hex(const uint8_t* data, uint64_t n, const std::function<void(uint64_t, uint64_t)>& consumed) {
  Sha1 sha1;
  for (uint64_t off = 0; off < n; off += kChunk) {
    const uint64_t len = std::min(kChunk, n - off);
    sha1.Update(data + off, len);
    if (consumed) consumed(off, len);
  }
  return sha1.Hex();
}

std::string Crc32Hex(const uint8_t* data, uint64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t off = 0; off < n; off += kChunk) crc = crc32(crc, data + off, static_cast<uInt>(std::min(kChunk, n - off)));
  return fmt::format("{:08x}", static_cast<uint32_t>(crc));
}

namespace {

// The manifest a directory already has, or null (absent or unreadable: then nothing is inherited).
nlohmann::json ExistingManifest(const std::string& dir) {
  auto text = ReadTextFile((fs::path(dir) / kManifestName).string());
  if (!text.ok()) return nullptr;
  auto parsed = ParseJsonText(*text);
  if (!parsed.ok()) return nullptr;
  nlohmann::json m = std::move(parsed).value();
  return m.is_object() && m.contains("files") && m["files"].is_object() ? m : nlohmann::json(nullptr);
}

}  // namespace

Result<nlohmann::json> BuildManifest(const std::string& dir, const std::vector<std::string>& link_sources,
                                     const std::map<std::string, StreamedCopy>& streamed, unsigned threads,
                                     bool hash_tensors) {
  nlohmann::json files = nlohmann::json::object(), tensors = nlohmann::json::object();
  std::map<std::string, const nlohmann::json*> linked;  // file -> the source manifest it inherits from (or null)
  // Streamed file -> the tensor entries its source's manifest recorded for the same bytes (or null).
  std::map<std::string, const nlohmann::json*> digested;
  std::map<std::string, nlohmann::json> source_manifests;
  std::vector<std::string> to_hash;  // files read and hashed here
  FORGE_ASSIGN_OR_RETURN(std::vector<std::string> names, ListFiles(dir));
  for (const auto& name : names) {
    const std::string path = (fs::path(dir) / name).string();
    auto src = std::find_if(link_sources.begin(), link_sources.end(),
                            [&](const std::string& s) { return SameFile(path, (fs::path(s) / name).string()); });
    if (src != link_sources.end()) {
      auto [it, fresh] = source_manifests.try_emplace(*src);
      if (fresh) it->second = ExistingManifest(*src);
      const nlohmann::json& m = it->second;
      const uint64_t bytes = fs::file_size(path);
      if (!m.is_null() && m["files"].contains(name) && m["files"][name].value("bytes", uint64_t{0}) == bytes) {
        files[name] = m["files"][name];
        linked[name] = &m;
      } else {
        files[name] = {{"bytes", bytes}, {"linked_from", (fs::path(*src) / name).string()}};
        linked[name] = nullptr;
      }
      continue;
    }
    std::error_code ec;
    if (auto d = streamed.find(name); d != streamed.end() && d->second.digest->bytes() == fs::file_size(path, ec) && !ec) {
      const StreamedFileDigest& digest = *d->second.digest;
      files[name] = {{"bytes", digest.bytes()}, {"sha1", digest.sha1()}, {"crc32", digest.crc32()}};
      const fs::path source(d->second.source_path);
      auto [it, fresh] = source_manifests.try_emplace(source.parent_path().string());
      if (fresh) it->second = ExistingManifest(it->first);
      const nlohmann::json& m = it->second;
      const std::string source_name = source.filename().string();
      const bool same = !m.is_null() && m["files"].contains(source_name) && m["files"][source_name].is_object() &&
                        m["files"][source_name].value("sha1", "") == digest.sha1() && m.contains("tensors") &&
                        m["tensors"].is_object();
      digested[name] = same ? &m["tensors"] : nullptr;
      continue;
    }
    to_hash.push_back(name);
  }
  if (!hash_tensors) {  // files alone: one pass over the bytes
    std::vector<FileDigest> digests(to_hash.size());
    ThreadPool pool(threads);
    FORGE_RETURN_IF_ERROR(pool.RunAll(to_hash.size(), [&](size_t j) -> Status {
      FORGE_ASSIGN_OR_RETURN(digests[j], DigestFile((fs::path(dir) / to_hash[j]).string(), true));
      return Status();
    }));
    for (size_t i = 0; i < to_hash.size(); ++i) {
      files[to_hash[i]] = {{"bytes", digests[i].bytes}, {"sha1", digests[i].sha1}, {"crc32", digests[i].crc32}};
    }
    return nlohmann::json{{"format", "forge-manifest/1"}, {"files", files}};
  }
  FORGE_ASSIGN_OR_RETURN(auto ckpt, Checkpoint::Open(dir));
  struct TensorJob {
    std::string name;
    const TensorRef* ref;
    std::string sha1;
  };
  std::vector<TensorJob> tensor_jobs;
  for (const auto& [name, ref] : ckpt->tensors()) {
    const std::string file = fs::path(ref.file->path()).filename().string();
    if (auto l = linked.find(file); l != linked.end()) {
      const nlohmann::json* m = l->second;
      if (m && m->contains("tensors") && (*m)["tensors"].contains(name)) tensors[name] = (*m)["tensors"][name];
      continue;
    }
    tensors[name] = {{"file", file}, {"dtype", std::string(DTypeName(ref.info->dtype))}, {"shape", ref.info->shape}};
    if (auto d = digested.find(file); d != digested.end() && d->second != nullptr && d->second->contains(name)) {
      const nlohmann::json& inherited = (*d->second)[name];
      // The source's entry for the same bytes: taken when it describes this tensor (its file's bytes are
      // proven equal, so a differing dtype or shape would mean that manifest is wrong: hash instead).
      if (inherited.is_object() && inherited.value("dtype", "") == tensors[name]["dtype"] &&
          inherited.contains("shape") && inherited["shape"] == tensors[name]["shape"] && inherited.contains("sha1") &&
          inherited["sha1"].is_string()) {
        tensors[name]["sha1"] = inherited["sha1"];
        continue;
      }
    }
    tensor_jobs.push_back({name, &ref, {}});
  }
  // Whole files first (the longest jobs), then tensors; each reads its own pages.
  std::vector<FileDigest> file_digests(to_hash.size());
  ThreadPool pool(threads);
  FORGE_RETURN_IF_ERROR(pool.RunAll(to_hash.size() + tensor_jobs.size(), [&](size_t j) -> Status {
    if (j < to_hash.size()) {
      FORGE_ASSIGN_OR_RETURN(file_digests[j], DigestFile((fs::path(dir) / to_hash[j]).string(), true));
      return Status();
    }
    TensorJob& t = tensor_jobs[j - to_hash.size()];
    t.sha1 = TensorSha1(*t.ref->file, *t.ref->info);
    return Status();
  }));
  for (size_t i = 0; i < to_hash.size(); ++i) {
    files[to_hash[i]] = {{"bytes", file_digests[i].bytes}, {"sha1", file_digests[i].sha1}, {"crc32", file_digests[i].crc32}};
  }
  for (const auto& t : tensor_jobs) tensors[t.name]["sha1"] = t.sha1;
  return nlohmann::json{{"format", "forge-manifest/1"}, {"files", files}, {"tensors", tensors}};
}

Result<ManifestCheck> CheckManifest(const std::string& dir, bool fast) {
  const std::string path = (fs::path(dir) / kManifestName).string();
  FORGE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  FORGE_ASSIGN_OR_RETURN(nlohmann::json m, ParseJsonFileText(text, path, "manifest"));
  FORGE_RETURN_IF_ERROR(ValidateManifest(m, path));
  ManifestCheck c;
  FORGE_ASSIGN_OR_RETURN(const std::vector<std::string> present, ListFiles(dir));
  for (auto it = m["files"].begin(); it != m["files"].end(); ++it) {
    const std::string file = (fs::path(dir) / it.key()).string();
    const uint64_t want_bytes = (*it)["bytes"].get<uint64_t>();
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) {
      c.mismatches.push_back(fmt::format("{}: missing", it.key()));
      continue;
    }
    ++c.files_checked;
    if (!it->contains("crc32")) {  // a linked file recorded by size alone: its bytes cannot be checked
      c.size_only_files.push_back(it.key());
      const uint64_t size = fs::file_size(file, ec);
      if (size != want_bytes) c.mismatches.push_back(fmt::format("{}: {} bytes, manifest says {}", it.key(), size, want_bytes));
      continue;
    }
    auto d = DigestFile(file, !fast);
    if (!d.ok()) return d.status();
    const std::string want_crc = (*it)["crc32"].get<std::string>(), want_sha = (*it)["sha1"].get<std::string>();
    if (d->bytes != want_bytes) {
      c.mismatches.push_back(fmt::format("{}: {} bytes, manifest says {}", it.key(), d->bytes, want_bytes));
    } else if (d->crc32 != want_crc) {
      c.mismatches.push_back(fmt::format("{}: crc32 {} differs from the manifest's {}", it.key(), d->crc32, want_crc));
    } else if (!fast && d->sha1 != want_sha) {
      c.mismatches.push_back(fmt::format("{}: sha1 {} differs from the manifest's {}", it.key(), d->sha1, want_sha));
    }
  }
  for (const auto& f : present) {
    if (!m["files"].contains(f)) c.mismatches.push_back(fmt::format("{}: not in the manifest", f));
  }
  if (!fast && m.contains("tensors") && m["tensors"].is_object() && c.mismatches.empty()) {
    FORGE_ASSIGN_OR_RETURN(auto ckpt, Checkpoint::Open(dir));
    for (auto it = m["tensors"].begin(); it != m["tensors"].end(); ++it) {
      auto ref = ckpt->Find(it.key());
      if (!ref) {
        c.mismatches.push_back(fmt::format("tensor {}: missing", it.key()));
        continue;
      }
      ++c.tensors_checked;
      const std::string sha = TensorSha1(*ref->file, *ref->info);
      if (sha != (*it)["sha1"].get<std::string>()) c.mismatches.push_back(fmt::format("tensor {}: sha1 {} differs from the manifest's", it.key(), sha));
    }
  }
  return c;
}

}  // namespace forge::verify
