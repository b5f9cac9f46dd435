// When quantize guesses and when it must not: a checkpoint whose tensors are Qwen3.5/3.6's but whose
// config.json is missing (or says nothing of the model) is refused rather than quantized matrix by matrix;
// --tensor-level asks for exactly that; a tensor set of no known model stays tensor-level by default.
#include <gtest/gtest.h>

#include <filesystem>

#include "forge/st/reader.h"
#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;
namespace fs = std::filesystem;

// A copy of a fixture's safetensors without config.json (or with `config`, when given).
std::string WithoutConfig(const TempDir& t, const char* fixture, const std::string& name,
                          const nlohmann::json* config = nullptr) {
  const std::string dir = t.Sub(name);
  fs::create_directory(dir);
  for (const auto& e : fs::directory_iterator(FixturePath(fixture))) {
    if (e.path().extension() == ".safetensors")
      fs::copy_file(e.path(), dir + "/" + e.path().filename().string());
  }
  if (config) WriteJson(dir + "/config.json", *config);
  return dir;
}

TEST(TensorLevel, QwenTensorsWithoutTheirConfigAreRefused) {
  TempDir t;
  const nlohmann::json quant_only = {{"quantization", {{"group_size", 64}, {"bits", 4}, {"mode", "affine"}}}};
  for (const std::string& src :
       {WithoutConfig(t, "dense-vlm-hf", "hf"), WithoutConfig(t, "moe-vlm-mlx", "mlx"),
        WithoutConfig(t, "dense-vlm-hf", "quant_only", &quant_only)}) {
    SCOPED_TRACE(src);
    auto r = RunForge("quantize --src " + src + " --out " + src + "_out --mode affine --bits 4");
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const char* m : {"config.json", "--tensor-level", "Qwen3.5/3.6 tensor"})
      EXPECT_NE(r.err.find(m), std::string::npos) << m << " in " << r.err;
    EXPECT_FALSE(fs::exists(src + "_out"));
    auto j = RunForge("quantize --json --src " + src + " --out " + src + "_out --mode affine --bits 4");
    EXPECT_EQ(nlohmann::json::parse(j.out)["exit_code"], 4);
  }
}

TEST(TensorLevel, TensorLevelFlagQuantizesEveryMatrixAsAPlainSet) {
  TempDir t;
  const std::string src = WithoutConfig(t, "dense-vlm-hf", "hf"), out = t.Sub("out");
  auto r =
      RunForge("quantize --json --tensor-level --src " + src + " --out " + out + " --mode affine --bits 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["input"], "tensors");
  auto in = st::SafetensorsFile::Open(src + "/model.safetensors");
  auto got = st::SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(in.ok() && got.ok());
  // Names untouched (no MLX conversion) and the matrices that the model recipe keeps float quantized too.
  int vision = 0, mtp_fc = 0;
  for (const auto& ti : (*in)->header().tensors) {
    const bool matrix = ti.shape.size() >= 2 && fs::path(ti.name).extension() == ".weight" &&
                        ti.shape.back() % 64 == 0 && ti.name.find("conv1d") == std::string::npos &&
                        ti.name.find("patch_embed") == std::string::npos;
    const std::string module = ti.name.substr(0, ti.name.size() - 7);
    if (!matrix) {
      EXPECT_NE((*got)->Find(ti.name), nullptr) << ti.name;
      continue;
    }
    EXPECT_NE((*got)->Find(module + ".scales"), nullptr) << ti.name;
    vision += ti.name.rfind("model.visual.", 0) == 0;
    mtp_fc += ti.name.rfind("mtp.fc.", 0) == 0;
  }
  EXPECT_GT(vision, 0);
  EXPECT_EQ(mtp_fc, 1);
  auto cfg = ReadJson(out + "/config.json");
  EXPECT_EQ(cfg["quantization"]["bits"], 4);
}

TEST(TensorLevel, PlainTensorSetsStayTensorLevelByDefault) {
  TempDir t;
  const std::string src = t.Sub("plain");
  fs::create_directory(src);
  fs::copy_file(FixturePath("mlx-quant-vectors/in_bf16.safetensors"), src + "/model.safetensors");
  auto r = RunForge("quantize --json --src " + src + " --out " + t.Sub("out") + " --mode mxfp4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["input"], "tensors");
  EXPECT_EQ(nlohmann::json::parse(r.out)["quantized_modules"], 3);
}

}  // namespace
}  // namespace forge
