// The malformed-checkpoint corpus, end to end: a real fixture broken one way at a time, handed to the
// forge binary. Each must be answered with the documented exit code and one line on stderr naming the
// file, the tensor where there is one, and the rule; no output directory (or staging leftover) may remain,
// and the source must be unchanged.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;
namespace fs = std::filesystem;

constexpr const char* kUp = "model.language_model.layers.0.mlp.up_proj.weight";

// A safetensors file as its header text and byte buffer.
struct Shard {
  std::string header, data;
  static Shard Read(const std::string& path) {
    const std::string bytes = ReadFile(path);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    return {bytes.substr(8, n), bytes.substr(8 + n)};
  }
  nlohmann::ordered_json Json() const { return nlohmann::ordered_json::parse(header); }
  void SetJson(const nlohmann::ordered_json& j) { header = j.dump(); }
  // `length` overrides the 8-byte header length (for lengths that lie).
  void Write(const std::string& path, uint64_t length = 0) const {
    std::string bytes(8, '\0');
    const uint64_t n = length ? length : header.size();
    std::memcpy(bytes.data(), &n, 8);
    WriteFile(path, bytes + header + data);
  }
};

// Edits the header of DIR/model.safetensors as JSON.
void EditHeader(const std::string& dir, const std::function<void(nlohmann::ordered_json&)>& edit) {
  Shard s = Shard::Read(dir + "/model.safetensors");
  auto j = s.Json();
  edit(j);
  s.SetJson(j);
  s.Write(dir + "/model.safetensors");
}

// Moves one tensor's data_offsets by the given amounts (the bytes stay where they are).
void MoveOffsets(const std::string& dir, const std::string& tensor, int64_t begin_by, int64_t end_by) {
  EditHeader(dir, [&](nlohmann::ordered_json& j) {
    auto& o = j[tensor]["data_offsets"];
    o = {o[0].get<int64_t>() + begin_by, o[1].get<int64_t>() + end_by};
  });
}

// Edits the header text of DIR/model.safetensors (for what JSON cannot express: duplicates, bad UTF-8).
void EditHeaderText(const std::string& dir, const std::string& from, const std::string& to) {
  Shard s = Shard::Read(dir + "/model.safetensors");
  const size_t at = s.header.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.header.replace(at, from.size(), to);
  s.Write(dir + "/model.safetensors");
}

// Moves DIR/model.safetensors to a one-shard layout with an index the caller then breaks.
void Shard1WithIndex(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  fs::rename(dir + "/model.safetensors", dir + "/model-00001-of-00001.safetensors");
  nlohmann::json index;
  index["metadata"]["total_size"] = 0;
  const auto header =
      Shard::Read(dir + "/model-00001-of-00001.safetensors").Json();  // kept: items() refers to it
  for (const auto& [name, v] : header.items()) {
    if (name != "__metadata__") index["weight_map"][name] = "model-00001-of-00001.safetensors";
  }
  edit(index);
  WriteJson(dir + "/model.safetensors.index.json", index);
}

void EditConfig(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto j = ReadJson(dir + "/config.json");
  edit(j);
  WriteJson(dir + "/config.json", j);
}

struct Case {
  const char* name;
  const char* fixture;
  std::function<void(const std::string& src)> corrupt;
  const char* command;  // {src} and {out} are substituted
  int exit_code;
  std::vector<std::string> mentions;  // the file, the tensor, the rule
};

std::string Substitute(std::string s, const std::string& src, const std::string& out) {
  for (auto [key, value] : {std::pair<std::string, std::string>{"{src}", src}, {"{out}", out}}) {
    for (size_t at; (at = s.find(key)) != std::string::npos;) s.replace(at, key.size(), value);
  }
  return s;
}

const char* kConvert = "convert --src {src} --out {out} --to mlx";
const char* kQuantize = "quantize --src {src} --out {out} --mode affine --bits 4";

std::vector<Case> Corpus() {
  const std::string model = "model.safetensors";
  return {
      {"truncated file",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard s = Shard::Read(d + "/model.safetensors");
         s.data.resize(s.data.size() - 100);
         s.Write(d + "/model.safetensors");
       },
       kConvert,
       1,
       {model, "MetadataIncompleteBuffer"}},
      {"header length past end of file",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard::Read(d + "/model.safetensors").Write(d + "/model.safetensors", 1u << 24);
       },
       kConvert,
       1,
       {model, "InvalidHeaderLength"}},
      {"header over 100 MB",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard::Read(d + "/model.safetensors").Write(d + "/model.safetensors", 200'000'000);
       },
       kConvert,
       1,
       {model, "HeaderTooLarge"}},
      {"non-UTF-8 name",
       "dense-vlm-hf",
       [](const std::string& d) { EditHeaderText(d, "up_proj", "up_pr\xffj"); },
       kConvert,
       1,
       {model, "InvalidHeader"}},
      {"duplicate key",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditHeaderText(d, "\"__metadata__\":{", "\"__metadata__\":{\"format\":\"pt\",");
       },
       kConvert,
       1,
       {model, "duplicate"}},
      {"unknown dtype",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditHeader(d, [](nlohmann::ordered_json& j) { j[kUp]["dtype"] = "BF17"; });
       },
       kConvert,
       1,
       {model, kUp, "dtype"}},
      {"negative shape",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditHeader(d, [](nlohmann::ordered_json& j) { j[kUp]["shape"][0] = -128; });
       },
       kConvert,
       1,
       {model, kUp}},
      {"overflowing shape",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditHeader(d, [](nlohmann::ordered_json& j) { j[kUp]["shape"] = {1ull << 40, 1ull << 40}; });
       },
       kConvert,
       1,
       {model, kUp, "overflow"}},
      {"overlapping offsets",
       "dense-vlm-hf",
       [](const std::string& d) { MoveOffsets(d, kUp, -8, -8); },
       kConvert,
       1,
       {model, kUp, "InvalidOffset"}},
      {"offsets past the end",
       "dense-vlm-hf",
       [](const std::string& d) { MoveOffsets(d, kUp, 0, int64_t{1} << 30); },
       kConvert,
       1,
       {model, kUp}},
      {"byte length not shape x dtype",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditHeader(d, [](nlohmann::ordered_json& j) { j[kUp]["shape"] = {128, 63}; });
       },
       kConvert,
       1,
       {model, kUp, "TensorInvalidInfo"}},
      {"index names a missing shard",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard1WithIndex(
             d, [](nlohmann::json& i) { i["weight_map"][kUp] = "model-00002-of-00002.safetensors"; });
       },
       kConvert,
       1,
       {"model-00002-of-00002.safetensors"}},
      {"index path escapes with ..",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard1WithIndex(
             d, [](nlohmann::json& i) { i["weight_map"][kUp] = "../model-00001-of-00001.safetensors"; });
       },
       kConvert,
       1,
       {"model.safetensors.index.json", ".."}},
      {"index path is absolute",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard1WithIndex(d, [](nlohmann::json& i) { i["weight_map"][kUp] = "/etc/passwd"; });
       },
       kConvert,
       1,
       {"model.safetensors.index.json", "/etc/passwd"}},
      {"index and shard disagree",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard1WithIndex(d, [](nlohmann::json& i) {
           i["weight_map"]["model.language_model.not_there.weight"] = "model-00001-of-00001.safetensors";
         });
       },
       kConvert,
       1,
       {"not_there"}},
      {"config without geometry",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["text_config"].erase("hidden_size"); });
       },
       kConvert,
       4,
       {"config.json", "hidden_size"}},
      {"config inconsistent with tensors",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["text_config"]["intermediate_size"] = 96; });
       },
       kConvert,
       4,
       {"config.json", "disagree", "gate_proj.weight", "[96, 64]"}},
      {"NaN in a tensor to quantize",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard s = Shard::Read(d + "/model.safetensors");
         const uint64_t at = s.Json()[kUp]["data_offsets"][0].get<uint64_t>() + 10;
         s.data[at] = '\xc0', s.data[at + 1] = '\x7f';  // bf16 quiet NaN
         s.Write(d + "/model.safetensors");
       },
       kQuantize,
       1,
       {model, "layers.0.mlp.up_proj.weight", "nan"}},
      {"quantized tensor with a wrong scales shape",
       "dense-vlm-mlx-q4",
       [](const std::string& d) {
         EditHeader(d, [](nlohmann::ordered_json& j) {
           auto& sc = j["language_model.model.layers.0.mlp.up_proj.scales"]["shape"];
           sc = {sc[0].get<uint64_t>() / 2, sc[1].get<uint64_t>() * 2};  // same bytes, wrong shape
         });
       },
       "dequantize --src {src} --out {out}",
       4,
       {"config.json", "up_proj", "scales 2 do not fit weight 8"}},
  };
}

TEST(Malformed, EveryCaseIsOneLineTheDocumentedExitAndNoOutput) {
  for (const Case& c : Corpus()) {
    SCOPED_TRACE(c.name);
    TempDir t;
    const std::string src = t.Sub("src"), out = t.Sub("out");
    CopyTree(FixturePath(c.fixture), src);
    c.corrupt(src);
    std::map<std::string, std::string> before;
    for (const auto& e : fs::directory_iterator(src)) before[e.path().string()] = ReadFile(e.path().string());
    auto r = RunForge(Substitute(c.command, src, out));
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const auto& m : c.mentions)
      EXPECT_NE(r.err.find(m), std::string::npos) << "'" << m << "' in: " << r.err;
    EXPECT_FALSE(fs::exists(out));
    for (const auto& e : fs::directory_iterator(t.path()))
      EXPECT_EQ(e.path().filename(), "src") << "left behind: " << e.path();
    for (const auto& [path, bytes] : before) EXPECT_TRUE(ReadFile(path) == bytes) << path << " changed";
  }
}

}  // namespace
}  // namespace forge
