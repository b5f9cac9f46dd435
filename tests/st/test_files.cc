#include "tests/st/test_files.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace forge::testing {
namespace fs = std::filesystem;

std::string FixturePath(const std::string& name) { return std::string(FORGE_FIXTURES_DIR) + "/" + name; }

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "forge-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string SafetensorsBytes(const std::string& header_json, uint64_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += header_json;
  out.append(data_bytes, '\x01');
  return out;
}

void PatchTensor(const std::string& file, const std::string& tensor,
                 const std::function<void(uint8_t* data, uint64_t bytes, const std::vector<int64_t>& shape)>& edit) {
  std::string bytes = ReadFile(file);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const auto h = nlohmann::json::parse(bytes.substr(8, n));
  ASSERT_TRUE(h.contains(tensor)) << file << ": no tensor " << tensor;
  const uint64_t begin = h[tensor]["data_offsets"][0], end = h[tensor]["data_offsets"][1];
  edit(reinterpret_cast<uint8_t*>(bytes.data() + 8 + n + begin), end - begin,
       h[tensor]["shape"].get<std::vector<int64_t>>());
  WriteFile(file, bytes);
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string FirstDifference(const std::string& path_a, const std::string& path_b) {
  const std::string a = ReadFile(path_a), b = ReadFile(path_b);
  if (a == b) return {};
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return path_a + " (" + std::to_string(a.size()) + " bytes) and " + path_b + " (" + std::to_string(b.size()) +
         " bytes) differ at byte " + std::to_string(i);
}

void CopyTree(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

nlohmann::json ReadJson(const std::string& path) { return nlohmann::json::parse(ReadFile(path)); }
void WriteJson(const std::string& path, const nlohmann::json& j) { WriteFile(path, j.dump(2)); }

CommandResult RunForge(const std::string& args) {
  TempDir tmp;
  std::string cmd = std::string(FORGE_BIN) + " " + args + " >" + tmp.Sub("out") + " 2>" + tmp.Sub("err");
  int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(tmp.Sub("out"));
  r.err = ReadFile(tmp.Sub("err"));
  return r;
}

}  // namespace forge::testing
