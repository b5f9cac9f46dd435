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

// Sets element `index` of a bf16 tensor in DIR/model.safetensors to the raw bits `value`.
void PokeBf16(const std::string& dir, const std::string& tensor, uint64_t index, uint16_t value) {
  PatchTensor(dir + "/model.safetensors", tensor, [&](uint8_t* d, uint64_t, const std::vector<int64_t>&) {
    d[2 * index] = static_cast<uint8_t>(value & 0xff), d[2 * index + 1] = static_cast<uint8_t>(value >> 8);
  });
}

// JSON text nested `depth` levels deep: {"a":{"a":...1...}}.
std::string DeepJson(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s.append(static_cast<size_t>(depth), '}');
  return s;
}

void SetRotaryFactor(nlohmann::json& j, double v) {
  auto& t = j["text_config"];
  if (t.contains("rope_parameters") && t["rope_parameters"].contains("partial_rotary_factor"))
    t["rope_parameters"]["partial_rotary_factor"] = v;
  else
    t["partial_rotary_factor"] = v;
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
       [](const std::string& d) { PokeBf16(d, kUp, 5, 0x7fc0); },  // bf16 quiet NaN
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
      // --- issue 14: what a red team and the team's own attacks found ---
      {"config.json nested 100000 levels",
       "dense-vlm-hf",
       [](const std::string& d) { WriteFile(d + "/config.json", DeepJson(100000)); },
       kConvert,
       1,
       {"config.json", "nested deeper than 128"}},
      {"index nested 100000 levels",
       "dense-vlm-hf",
       [](const std::string& d) {
         Shard1WithIndex(d, [](nlohmann::json&) {});
         WriteFile(d + "/model.safetensors.index.json", DeepJson(100000));
       },
       kConvert,
       1,
       {"model.safetensors.index.json", "nested deeper"}},
      {"prompts file nested 100000 levels",
       "trained-vlm-hf",
       [](const std::string& d) { WriteFile(d + "/p.jsonl", DeepJson(100000) + "\n"); },
       "verify --identity --model {src} --prompts {src}/p.jsonl",
       1,
       {"p.jsonl:1", "nested deeper"}},
      {"heads x head_dim overflows 64 bits",
       "trained-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["text_config"]["num_attention_heads"] = int64_t{1} << 40; });
       },
       "verify --identity --model {src} --max-tokens 2",
       1,
       {"config.json", "num_attention_heads", "1099511627776", "outside what forge accepts"}},
      {"1e10 experts",
       "moe-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["text_config"]["num_experts"] = int64_t{10000000000}; });
       },
       "inspect config {src}",
       1,
       {"config.json", "num_experts", "10000000000"}},
      {"1e7 MTP layers",
       "trained-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["text_config"]["mtp_num_hidden_layers"] = 10000000; });
       },
       "verify --identity --model {src} --max-tokens 2",
       1,
       {"config.json", "mtp_num_hidden_layers", "10000000"}},
      {"1e9 layers from full_attention_interval",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) {
           j["text_config"].erase("layer_types");
           j["text_config"]["full_attention_interval"] = 4;
           j["text_config"]["num_hidden_layers"] = 1000000000;
         });
       },
       kConvert,
       1,
       {"config.json", "num_hidden_layers", "1000000000"}},
      {"zero key/value heads (a division by zero)",
       "trained-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["text_config"]["num_key_value_heads"] = 0; });
       },
       "verify --identity --model {src} --max-tokens 2",
       1,
       {"config.json", "num_key_value_heads"}},
      {"unknown layer_types entry",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["text_config"]["layer_types"][0] = "sliding_attention"; });
       },
       kConvert,
       1,
       {"config.json", "layer_types", "sliding_attention"}},
      {"negative partial_rotary_factor",
       "trained-vlm-hf",
       [](const std::string& d) { EditConfig(d, [](nlohmann::json& j) { SetRotaryFactor(j, -0.5); }); },
       "verify --identity --model {src} --max-tokens 2",
       1,
       {"config.json", "partial_rotary_factor", "-0.5"}},
      {"invalid group size (inspect)",
       "dense-vlm-mlx-q4",
       [](const std::string& d) { EditConfig(d, [](nlohmann::json& j) { j["quantization"]["group_size"] = 48; }); },
       "inspect config {src}",
       1,
       {"config.json", "quantization", "group size must be 32, 64 or 128"}},
      {"invalid group size (convert)",
       "dense-vlm-mlx-q4",
       [](const std::string& d) { EditConfig(d, [](nlohmann::json& j) { j["quantization"]["group_size"] = 48; }); },
       kConvert,
       1,
       {"config.json", "quantization", "group size must be 32, 64 or 128"}},
      {"invalid group size (dequantize)",
       "dense-vlm-mlx-q4",
       [](const std::string& d) { EditConfig(d, [](nlohmann::json& j) { j["quantization"]["group_size"] = 48; }); },
       "dequantize --src {src} --out {out}",
       1,
       {"config.json", "quantization", "group size must be 32, 64 or 128"}},
      {"group size 2^40",
       "dense-vlm-mlx-q4",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["quantization"]["group_size"] = int64_t{1} << 40; });
       },
       "dequantize --src {src} --out {out}",
       1,
       {"config.json", "1099511627776"}},
      {"a norm that is not a float",
       "dense-vlm-hf",
       [](const std::string& d) {
         EditHeader(d, [](nlohmann::ordered_json& j) { j["model.language_model.norm.weight"]["dtype"] = "I16"; });
       },
       kConvert,
       1,
       {model, "model.language_model.norm.weight", "not a float"}},
      {"a file name that is not UTF-8",
       "dense-vlm-hf",
       [](const std::string& d) { WriteFile(d + "/notes-\xff.txt", "x"); },
       kConvert,
       1,
       {"notes-\\xff.txt", "not valid UTF-8"}},
      {"manifest with a wrong-typed size",
       "dense-vlm-hf",
       [](const std::string& d) {
         WriteFile(d + "/forge-manifest.json", R"({"files": {"model.safetensors": {"bytes": "many"}}})");
       },
       "verify --manifest {src}",
       1,
       {"forge-manifest.json", "model.safetensors", "'bytes'"}},
      {"manifest naming a file outside the directory",
       "dense-vlm-hf",
       [](const std::string& d) {
         WriteFile(d + "/forge-manifest.json", R"({"files": {"../../etc/passwd": {"bytes": 1, "sha1": "0", "crc32": "0"}}})");
       },
       "verify --manifest {src}",
       1,
       {"forge-manifest.json", "../../etc/passwd", "inside the directory"}},
      {"manifest of a directory that does not exist",
       "dense-vlm-hf",
       [](const std::string&) {},
       "manifest {src}/missing",
       1,
       {"missing", "not a directory"}},
      {"NaN weights: backbone logits not finite",
       "trained-vlm-hf",
       [](const std::string& d) {
         for (uint64_t i = 0; i < 128; ++i) PokeBf16(d, "model.language_model.norm.weight", i, 0x7fc0);
       },
       "verify --identity --model {src} --max-tokens 4",
       5,
       {"src", "backbone", "not finite"}},
      {"NaN weights in the MTP head only",
       "trained-vlm-hf",
       [](const std::string& d) {
         for (uint64_t i = 0; i < 128; ++i) PokeBf16(d, "mtp.norm.weight", i, 0x7fc0);
       },
       "verify --identity --model {src} --max-tokens 4",
       5,
       {"MTP head", "not finite"}},
      {"convert --dtype f16 would create an infinity",
       "dense-vlm-hf",
       [](const std::string& d) { PokeBf16(d, kUp, 5, 0x4789); },  // 70144: past f16's 65504
       "convert --src {src} --out {out} --to mlx --dtype f16",
       1,
       {model, "up_proj.weight", "overflows f16", "--allow-overflow"}},
      {"prompt past max_position_embeddings",
       "trained-vlm-hf",
       [](const std::string& d) {
         EditConfig(d, [](nlohmann::json& j) { j["text_config"]["max_position_embeddings"] = 8; });
       },
       "verify --identity --model {src} --prompt-tokens 1,2,3,4,5 --max-tokens 8",
       1,
       {"config.json", "max_position_embeddings", "13 positions"}},
      {"--max-tokens near 2^63",
       "trained-vlm-hf",
       [](const std::string&) {},
       "verify --identity --model {src} --prompt-tokens 1,2 --max-tokens 9223372036854775807",
       1,
       {"max_position_embeddings"}},
      {"--max-shard-size overflowing 64 bits",
       "dense-vlm-hf",
       [](const std::string&) {},
       "reshard --src {src} --out {out} --max-shard-size 99999999999999999999999GB",
       64,
       {"too large"}},
      {"config.json is a directory",
       "dense-vlm-hf",
       [](const std::string& d) {
         fs::remove(d + "/config.json");
         fs::create_directory(d + "/config.json");
       },
       kConvert,
       1,
       {"config.json", "Is a directory"}},
      {"tokenizer.json cut short",
       "trained-vlm-hf",
       [](const std::string& d) { WriteFile(d + "/tokenizer.json", "{\"model\": "); },
       "verify --identity --model {src} --prompt hello",
       1,
       {"tokenizer.json", "not valid JSON"}},
      {"prompts file is a directory",
       "trained-vlm-hf",
       [](const std::string& d) { fs::create_directory(d + "/prompts"); },
       "verify --identity --model {src} --prompts {src}/prompts",
       1,
       {"prompts", "not a regular file"}},
      {"2 MB prompt without spaces",
       "trained-vlm-hf",
       [](const std::string& d) {
         WriteFile(d + "/p.jsonl", "{\"prompt\": \"" + std::string(2u << 20, 'a') + "\"}\n");
       },
       "verify --identity --model {src} --prompts {src}/p.jsonl",
       1,
       {"config.json", "prompt 1 has", "max_position_embeddings"}},
      {"--threads 4e9",
       "dense-vlm-hf",
       [](const std::string&) {},
       "reshard --src {src} --out {out} --threads 4000000000",
       64,
       {"--threads", "1024"}},
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
