// Both reference vector sets through the forge binary, as a user runs it: every input file quantized by
// `forge quantize` (tensor-level mode: the vectors are no Qwen model) and every MLX-made quantized file
// turned back by `forge dequantize` beside the config.json forge's own quantize wrote for it. Each output
// tensor is compared byte for byte with what the real MLX library (CPU) or MLX's Metal rules produced.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <regex>

#include "forge/st/reader.h"
#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;
namespace fs = std::filesystem;

struct VectorCase {
  std::string file, dtype, mode;
  int bits, group;
};

std::vector<VectorCase> Cases(const std::string& dir, const std::string& prefix) {
  std::vector<VectorCase> out;
  const std::regex re(prefix + R"(_(bf16|f16|f32)_(affine|mxfp4|mxfp8|nvfp4)_b(\d+)_g(\d+)\.safetensors)");
  for (const auto& e : fs::directory_iterator(FixturePath(dir))) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, re)) {
      out.push_back(
          {e.path().string(), m[1].str(), m[2].str(), std::stoi(m[3].str()), std::stoi(m[4].str())});
    }
  }
  std::sort(out.begin(), out.end(), [](const VectorCase& a, const VectorCase& b) { return a.file < b.file; });
  return out;
}

std::unique_ptr<st::SafetensorsFile> OpenFile(const std::string& path) {
  auto f = st::SafetensorsFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? std::move(f).value() : nullptr;
}

// Every tensor of `want` is in `got` with the same dtype, shape and bytes; returns how many were compared.
int ExpectTensorsEqual(const st::SafetensorsFile& want, const st::SafetensorsFile& got,
                       const std::string& what) {
  int n = 0;
  for (const auto& t : want.header().tensors) {
    const st::TensorInfo* g = got.Find(t.name);
    if (g == nullptr) {
      ADD_FAILURE() << what << ": no tensor " << t.name;
      continue;
    }
    const bool same = g->dtype == t.dtype && g->shape == t.shape &&
                      std::memcmp(got.Data(*g), want.Data(t), t.nbytes()) == 0;
    EXPECT_TRUE(same) << what << ": " << t.name;
    n += same;
  }
  return n;
}

std::string Args(std::initializer_list<std::string> parts) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : " ") + p;
  return s;
}

// forge quantize on in_<dtype>.safetensors; returns the output directory's model.safetensors path.
std::string QuantizeThroughCli(const TempDir& tmp, const VectorCase& c, const char* match, int* files_equal) {
  const std::string src = tmp.Sub("src_" + c.dtype),
                    out = tmp.Sub(std::string(match) + "_" + fs::path(c.file).stem().string());
  if (!fs::exists(src)) {
    fs::create_directory(src);
    fs::copy_file(FixturePath("mlx-quant-vectors/in_" + c.dtype + ".safetensors"),
                  src + "/model.safetensors");
  }
  auto r =
      RunForge(Args({"quantize --src", src, "--out", out, "--mode", c.mode, "--bits", std::to_string(c.bits),
                     "--group-size", std::to_string(c.group), "--match", match, "--quiet"}));
  EXPECT_EQ(r.exit_code, 0) << c.file << ": " << r.err;
  if (r.exit_code != 0) return "";
  auto want = OpenFile(c.file), got = OpenFile(out + "/model.safetensors"),
       in = OpenFile(src + "/model.safetensors");
  int equal = ExpectTensorsEqual(*want, *got, c.file),
      expected = static_cast<int>(want->header().tensors.size());
  // What MLX did not quantize (a last dim the group does not divide) is carried float and unchanged.
  for (const auto& t : in->header().tensors) {
    if (want->Find(t.name) != nullptr) continue;
    const st::TensorInfo* g = got->Find(t.name);
    const bool same = g && g->dtype == t.dtype && g->shape == t.shape &&
                      std::memcmp(got->Data(*g), in->Data(t), t.nbytes()) == 0;
    EXPECT_TRUE(same) << c.file << ": " << t.name << " carried unchanged";
    equal += same;
    ++expected;
  }
  EXPECT_EQ(static_cast<int>(got->header().tensors.size()), expected) << c.file;
  if (equal == expected && static_cast<int>(got->header().tensors.size()) == expected) ++*files_equal;
  return out;
}

TEST(VectorsCli, QuantizeEqualsTheRealMlxLibraryAndItsMetalRules) {
  TempDir t;
  int cpu_equal = 0, gpu_equal = 0;
  const auto cpu = Cases("mlx-quant-vectors", "q"), gpu = Cases("mlx-gpu-rule-vectors", "q");
  ASSERT_EQ(cpu.size(), 63u);
  ASSERT_EQ(gpu.size(), 63u);
  for (const auto& c : cpu) QuantizeThroughCli(t, c, "mlx-cpu", &cpu_equal);
  for (const auto& c : gpu) QuantizeThroughCli(t, c, "mlx-gpu", &gpu_equal);
  EXPECT_EQ(cpu_equal, 63);
  EXPECT_EQ(gpu_equal, 63);
}

TEST(VectorsCli, DequantizeEqualsTheRealMlxLibraryWithTheConfigQuantizeWrote) {
  TempDir t;
  int quantized_equal = 0, dequantized_equal = 0;
  for (const auto& c : Cases("mlx-quant-vectors", "q")) {
    const std::string forge_q = QuantizeThroughCli(t, c, "mlx-cpu", &quantized_equal);
    if (forge_q.empty()) continue;
    // MLX's own quantized tensors beside the config.json (a quantization block only) forge wrote for them.
    const std::string src = t.Sub("mlxq_" + fs::path(c.file).stem().string()), out = src + "_dq";
    fs::create_directory(src);
    fs::copy_file(c.file, src + "/model.safetensors");
    fs::copy_file(forge_q + "/config.json", src + "/config.json");
    auto r = RunForge(Args({"dequantize --src", src, "--out", out, "--quiet"}));
    ASSERT_EQ(r.exit_code, 0) << c.file << ": " << r.err;
    const std::string dq =
        FixturePath("mlx-quant-vectors/dq" + fs::path(c.file).filename().string().substr(1));
    auto want = OpenFile(dq), got = OpenFile(out + "/model.safetensors");
    const int n = ExpectTensorsEqual(*want, *got, dq);
    EXPECT_EQ(got->header().tensors.size(), want->header().tensors.size()) << dq;
    dequantized_equal += n == static_cast<int>(want->header().tensors.size());
    EXPECT_FALSE(ReadJson(out + "/config.json").contains("quantization")) << dq;
  }
  EXPECT_EQ(quantized_equal, 63);
  EXPECT_EQ(dequantized_equal, 63);
}

}  // namespace
}  // namespace forge
