// Test helpers: temporary directories, hand-built safetensors bytes, fixture paths, running the binary.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace forge::testing {

std::string FixturePath(const std::string& name);  // fixtures/<name>

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// 8-byte little-endian length + header text (as given, unpadded) + `data_bytes` bytes of payload.
std::string SafetensorsBytes(const std::string& header_json, uint64_t data_bytes);
void WriteFile(const std::string& path, const std::string& bytes);
std::string ReadFile(const std::string& path);
// Empty when equal, else where the two files first differ (never dumps binary into test output).
std::string FirstDifference(const std::string& path_a, const std::string& path_b);
void CopyTree(const std::string& from, const std::string& to);
// Rewrites one tensor's bytes in place in a safetensors file (a copy of a fixture): edit(data, bytes, shape).
void PatchTensor(const std::string& file, const std::string& tensor,
                 const std::function<void(uint8_t* data, uint64_t bytes, const std::vector<int64_t>& shape)>& edit);
nlohmann::json ReadJson(const std::string& path);
void WriteJson(const std::string& path, const nlohmann::json& j);

struct CommandResult {
  int exit_code;
  std::string out, err;
};
// Runs the forge binary with arguments (shell-quoted by the caller).
CommandResult RunForge(const std::string& args);

}  // namespace forge::testing
