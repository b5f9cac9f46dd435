// Every case of both reference vector sets (fixtures/mlx-quant-vectors: the real MLX library, CPU;
// fixtures/mlx-gpu-rule-vectors: MLX's Metal rules), tensor by tensor, byte for byte.
#include <cstring>
#include <filesystem>
#include <regex>

#include <gtest/gtest.h>

#include "forge/st/reader.h"
#include "quantize/codec.h"
#include "tests/st/test_files.h"

namespace forge::quant {
namespace {
namespace fs = std::filesystem;

struct Case {
  std::string file, dtype;
  QuantParams params;
};

std::vector<Case> Cases(const std::string& dir, const std::string& prefix) {
  std::vector<Case> out;
  const std::regex re(prefix + R"(_(bf16|f16|f32)_(affine|mxfp4|mxfp8|nvfp4)_b(\d+)_g(\d+)\.safetensors)");
  for (const auto& e : fs::directory_iterator(testing::FixturePath(dir))) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, re)) continue;
    out.push_back({e.path().string(), m[1].str(), {*ParseQuantMode(m[2].str()), std::stoi(m[3].str()), std::stoi(m[4].str())}});
  }
  std::sort(out.begin(), out.end(), [](const Case& a, const Case& b) { return a.file < b.file; });
  return out;
}

std::unique_ptr<st::SafetensorsFile> Open(const std::string& path) {
  auto f = st::SafetensorsFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return std::move(f).value();
}

bool SameBytes(const st::SafetensorsFile& f, const st::TensorInfo& t, const std::vector<uint8_t>& got) {
  return t.nbytes() == got.size() && std::memcmp(f.Data(t), got.data(), got.size()) == 0;
}

// Returns the number of tensors compared.
int CheckQuantizeCase(const Case& c, Rules rules) {
  auto input = Open(testing::FixturePath("mlx-quant-vectors/in_" + c.dtype + ".safetensors"));
  auto want = Open(c.file);
  int compared = 0;
  for (const auto& t : want->header().tensors) {
    if (t.name.size() < 7 || t.name.substr(t.name.size() - 7) != ".weight") continue;
    const std::string module = t.name.substr(0, t.name.size() - 7);
    const st::TensorInfo* in = input->Find(t.name);
    EXPECT_NE(in, nullptr) << t.name;
    const uint64_t k = in->shape.back(), rows = in->numel() / k;
    const DType sdt = ScalesDType(c.params, in->dtype);
    std::vector<uint8_t> packed(rows * k * c.params.bits / 8);
    std::vector<uint8_t> scales(rows * (k / c.params.group_size) * DTypeBits(sdt) / 8), biases(scales.size());
    QuantizeRows(c.params, rules, in->dtype, input->Data(*in), rows, k, packed.data(), scales.data(), biases.data());
    EXPECT_TRUE(SameBytes(*want, t, packed)) << c.file << " " << t.name;
    const st::TensorInfo* ws = want->Find(module + ".scales");
    EXPECT_TRUE(ws != nullptr && ws->dtype == sdt && SameBytes(*want, *ws, scales)) << c.file << " " << module << ".scales";
    if (HasBiases(c.params)) {
      const st::TensorInfo* wb = want->Find(module + ".biases");
      EXPECT_TRUE(wb != nullptr && SameBytes(*want, *wb, biases)) << c.file << " " << module << ".biases";
    }
    ++compared;
  }
  return compared;
}

TEST(MlxVectors, CpuRulesEqualTheRealMlxLibrary) {
  auto cases = Cases("mlx-quant-vectors", "q");
  ASSERT_EQ(cases.size(), 63u);
  int tensors = 0;
  for (const auto& c : cases) tensors += CheckQuantizeCase(c, Rules::kMlxCpu);
  EXPECT_EQ(tensors, 153);  // 36 affine g32/g64 files x 3 + 18 g128 files x 1 (b.weight) + 9 fp files x 3
}

TEST(MlxVectors, GpuRulesEqualTheMetalRuleVectors) {
  auto cases = Cases("mlx-gpu-rule-vectors", "q");
  ASSERT_EQ(cases.size(), 63u);
  int tensors = 0;
  for (const auto& c : cases) tensors += CheckQuantizeCase(c, Rules::kMlxGpu);
  EXPECT_EQ(tensors, 153);  // 36 affine g32/g64 files x 3 + 18 g128 files x 1 (b.weight) + 9 fp files x 3
}

TEST(MlxVectors, DequantizeEqualsTheRealMlxLibrary) {
  auto cases = Cases("mlx-quant-vectors", "q");
  int tensors = 0;
  for (const auto& c : cases) {
    auto q = Open(c.file);
    auto want = Open(testing::FixturePath("mlx-quant-vectors/dq" + fs::path(c.file).filename().string().substr(1)));
    for (const auto& t : want->header().tensors) {
      const std::string module = t.name.substr(0, t.name.size() - 7);
      const st::TensorInfo *w = q->Find(t.name), *s = q->Find(module + ".scales"), *b = q->Find(module + ".biases");
      ASSERT_TRUE(w && s);
      const uint64_t k = t.shape.back(), rows = t.numel() / k;
      const DType out_dtype = DefaultDequantDType(c.params, s->dtype);
      ASSERT_EQ(out_dtype, t.dtype) << c.file;
      std::vector<uint8_t> out(t.nbytes());
      DequantizeRows(c.params, s->dtype, q->Data(*w), q->Data(*s), b ? q->Data(*b) : nullptr, rows, k, out_dtype, out.data());
      EXPECT_TRUE(SameBytes(*want, t, out)) << c.file << " " << t.name;
      ++tensors;
    }
  }
  EXPECT_EQ(tensors, 153);  // 36 affine g32/g64 files x 3 + 18 g128 files x 1 (b.weight) + 9 fp files x 3
}

}  // namespace
}  // namespace forge::quant
