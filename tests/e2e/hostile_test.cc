// Hostile inputs that must be handled, not refused: each once crashed, hung, or gave a wrong answer.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>

#include "forge/st/reader.h"
#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;
namespace fs = std::filesystem;

// A weight [64, 0] has no groups: quantizing it once divided by zero (SIGFPE).
TEST(Hostile, AnEmptyWeightStaysFloat) {
  TempDir t;
  fs::create_directory(t.Sub("src"));
  WriteFile(t.Sub("src/model.safetensors"),
            SafetensorsBytes(R"({"w.weight":{"dtype":"BF16","shape":[64,0],"data_offsets":[0,0]}})", 0));
  auto r = RunForge("quantize --json --src " + t.Sub("src") + " --out " + t.Sub("out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["quantized_modules"], 0);
  auto dry = nlohmann::json::parse(
      RunForge("quantize --dry-run --json --src " + t.Sub("src") + " --out " + t.Sub("o2")).out);
  EXPECT_NE(dry["kept_float"]["w.weight"].get<std::string>().find("empty"), std::string::npos);
}

// "mtp.layers.4294967296.*" is no MTP layer 0: the index is not folded by a narrowing cast.
TEST(Hostile, AnMtpLayerIndexPast2To32IsNotLayerZero) {
  TempDir t;
  const std::string src = t.Sub("src");
  CopyTree(FixturePath("dense-vlm-hf"), src);
  std::string bytes = ReadFile(src + "/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  std::string header = bytes.substr(8, n);
  for (size_t at; (at = header.find("mtp.layers.0.")) != std::string::npos;)
    header.replace(at, 13, "mtp.layers.4294967296.");
  std::string out(8, '\0');
  const uint64_t len = header.size();
  std::memcpy(out.data(), &len, 8);
  WriteFile(src + "/model.safetensors", out + header + bytes.substr(8 + n));
  auto r = RunForge("inspect config --json " + src);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NE(j["mtp"]["status"], "ready") << r.out;
  EXPECT_EQ(j["mtp"]["layers_present"], 0);
  EXPECT_EQ(r.exit_code, 3);
}

// A FIFO (or any special file) in a checkpoint directory is not read: reading it would block forever.
TEST(Hostile, SpecialFilesInTheDirectoryAreNotRead) {
  TempDir t;
  const std::string src = t.Sub("src");
  CopyTree(FixturePath("dense-vlm-hf"), src);
  ASSERT_EQ(::mkfifo((src + "/notes.fifo").c_str(), 0644), 0);
  auto r = RunForge("reshard --quiet --src " + src + " --out " + t.Sub("out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(t.Sub("out/notes.fifo")));
}

// --allow-overflow is the documented way past the f16 refusal: the value is stored as infinity.
TEST(Hostile, AllowOverflowStoresInfinity) {
  TempDir t;
  const std::string src = t.Sub("src"), out = t.Sub("out");
  CopyTree(FixturePath("dense-vlm-hf"), src);
  const std::string tensor = "model.language_model.layers.0.mlp.up_proj.weight";
  PatchTensor(src + "/model.safetensors", tensor, [](uint8_t* d, uint64_t, const std::vector<int64_t>&) {
    d[0] = 0x89, d[1] = 0x47;  // bf16 70144
  });
  ASSERT_EQ(RunForge("convert -q --src " + src + " --out " + t.Sub("refused") + " --dtype f16").exit_code, 1);
  auto r = RunForge("convert -q --src " + src + " --out " + out + " --dtype f16 --allow-overflow");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto f = st::SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(f.ok());
  const st::TensorInfo* ti = (*f)->Find("language_model.model.layers.0.mlp.up_proj.weight");
  ASSERT_NE(ti, nullptr);
  uint16_t h = 0;
  std::memcpy(&h, (*f)->Data(*ti), 2);
  EXPECT_EQ(h, 0x7c00);  // f16 +inf
}

// 100,000 tensors in one header: the duplicate-key parser was quadratic (5-8 s here, 100,000 never ended).
TEST(Hostile, ManyTensorsInOneHeaderParseInLinearTime) {
  TempDir t;
  std::string header = "{";
  for (int i = 0; i < 100000; ++i) {
    // appended piece by piece: GCC 12 warns spuriously (-Wrestrict) on chains of string concatenations
    header.append(i ? ",\"t" : "\"t").append(std::to_string(i));
    header.append("\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[").append(std::to_string(i));
    header.append(",").append(std::to_string(i + 1)).append("]}");
  }
  header += "}";
  WriteFile(t.Sub("many.safetensors"), SafetensorsBytes(header, 100000));
  auto r = RunForge("inspect tensors --json " + t.Sub("many.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["tensors"].size(), 100000u);
}

}  // namespace
}  // namespace forge
