// quantize computes a matrix's codes a block of rows at a time, on whichever writer thread asks, and
// writes each block while it is in cache; the scales and biases are handed out once every block is done.
// Whatever the blocks and threads, the output must be exactly the codec's on the whole matrix (the codec
// itself is checked against the real MLX library in vectors_test), and the fidelity report must not depend
// on the thread count.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "forge/base/half.h"
#include "forge/st/reader.h"
#include "quantize/codec.h"
#include "tests/st/test_files.h"

namespace forge {
namespace {
namespace fs = std::filesystem;
using namespace testing;

// 700 rows of 1,536 bf16: 768 bytes of 4-bit codes per row, so a 256 KB block is 341 rows and the matrix is
// two whole blocks and a short one; mxfp8 codes (1,536 bytes a row) make five blocks.
constexpr uint64_t kRows = 700, kCols = 1536;

std::vector<uint16_t> Weights() {
  std::vector<uint16_t> w(kRows * kCols);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (auto& v : w) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const float u = static_cast<float>((s >> 40) & 0xFFFFFF) / 16777216.0f;  // [0, 1)
    v = F32ToBf16((u - 0.5f) * static_cast<float>(1 + (s >> 20) % 7));       // groups of varied range
  }
  return w;
}

std::string WriteMatrix(const TempDir& t, const std::vector<uint16_t>& w) {
  const std::string header =
      nlohmann::json{{"layer.weight",
                      {{"dtype", "BF16"}, {"shape", {kRows, kCols}}, {"data_offsets", {0, w.size() * 2}}}}}
          .dump();
  std::string bytes = SafetensorsBytes(header, 0);
  bytes.append(reinterpret_cast<const char*>(w.data()), w.size() * 2);
  fs::create_directory(t.Sub("src"));
  const std::string path = t.Sub("src/matrix.safetensors");
  WriteFile(path, bytes);
  return path;
}

std::string TensorBytes(const st::SafetensorsFile& f, const std::string& name) {
  const st::TensorInfo* t = f.Find(name);
  if (t == nullptr) return "<missing " + name + ">";
  return std::string(reinterpret_cast<const char*>(f.Data(*t)), t->nbytes());
}

struct Mode {
  const char* flags;
  quant::QuantParams params;
};

TEST(StreamedQuantize, BlocksOnAnyThreadsEqualTheCodecOnTheWholeMatrix) {
  TempDir t;
  const std::vector<uint16_t> w = Weights();
  const std::string src = WriteMatrix(t, w);
  for (const Mode& m : {Mode{"--mode affine --bits 4", {quant::QuantMode::kAffine, 4, 64}},
                        Mode{"--mode affine --bits 8 --group-size 32", {quant::QuantMode::kAffine, 8, 32}},
                        Mode{"--mode mxfp8", {quant::QuantMode::kMxfp8, 8, 32}},
                        Mode{"--mode nvfp4", {quant::QuantMode::kNvfp4, 4, 16}}}) {
    SCOPED_TRACE(m.flags);
    const quant::QuantParams& p = m.params;
    const DType sdt = quant::ScalesDType(p, DType::kBF16);
    const uint64_t groups = kRows * kCols / static_cast<uint64_t>(p.group_size);
    std::string codes(kRows * kCols * static_cast<uint64_t>(p.bits) / 8, '\0');
    std::string scales(groups * DTypeBits(sdt) / 8, '\0'), biases(scales.size(), '\0');
    quant::QuantizeRows(p, quant::Rules::kMlxGpu, DType::kBF16, reinterpret_cast<const uint8_t*>(w.data()),
                        kRows, kCols, reinterpret_cast<uint8_t*>(codes.data()),
                        reinterpret_cast<uint8_t*>(scales.data()), reinterpret_cast<uint8_t*>(biases.data()));
    std::string first_report;
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(threads);
      const std::string out = t.Sub(fmt::format("out{}", threads)), report = out + ".report.json";
      fs::remove_all(out);
      fs::remove(report);
      auto r =
          RunForge(fmt::format("quantize -q --tensor-level --threads {} --src {} --out {} {} --report {}",
                               threads, src, out, m.flags, report));
      ASSERT_EQ(r.exit_code, 0) << r.err;
      auto got = st::SafetensorsFile::Open(out + "/model.safetensors");
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_TRUE(TensorBytes(**got, "layer.weight") == codes);
      EXPECT_TRUE(TensorBytes(**got, "layer.scales") == scales);
      if (quant::HasBiases(p)) {
        EXPECT_TRUE(TensorBytes(**got, "layer.biases") == biases);
      } else {
        EXPECT_EQ((*got)->Find("layer.biases"), nullptr);
      }
      const std::string text = ReadFile(report);
      EXPECT_GT(ReadJson(report)["totals"]["cosine_min"].get<double>(), 0.9);
      if (first_report.empty()) first_report = text;
      EXPECT_EQ(text, first_report) << "the report depends on the thread count";
    }
  }
}

// Dequantization splits by rows too: `forge dequantize` and a requantization read the codes, scales and
// biases of a few hundred KB of rows at a time. Whatever the threads, the bytes must be those of the
// element-by-element reference on the whole matrix (and, requantized, the codec on that).
TEST(StreamedQuantize, DequantizeAndRequantizeByRowsEqualTheReferenceOnTheWholeMatrix) {
  TempDir t;
  const std::vector<uint16_t> w = Weights();
  const std::string src = WriteMatrix(t, w);
  const quant::QuantParams to{quant::QuantMode::kAffine, 4, 64};  // the requantization target
  for (const Mode& m : {Mode{"--mode affine --bits 8 --group-size 32", {quant::QuantMode::kAffine, 8, 32}},
                        Mode{"--mode mxfp8", {quant::QuantMode::kMxfp8, 8, 32}},
                        Mode{"--mode nvfp4", {quant::QuantMode::kNvfp4, 4, 16}}}) {
    SCOPED_TRACE(m.flags);
    const std::string q = t.Sub(fmt::format("q-{}{}", quant::QuantModeName(m.params.mode), m.params.bits));
    auto r = RunForge(fmt::format("quantize -q --tensor-level --src {} --out {} {}", src, q, m.flags));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto qf = st::SafetensorsFile::Open(q + "/model.safetensors");
    ASSERT_TRUE(qf.ok());
    const st::TensorInfo* scales = (*qf)->Find("layer.scales");
    const st::TensorInfo* biases = (*qf)->Find("layer.biases");
    ASSERT_NE(scales, nullptr);
    const DType out_dt = quant::DefaultDequantDType(m.params, scales->dtype);
    std::string want(kRows * kCols * DTypeBits(out_dt) / 8, '\0');
    quant::DequantizeRowsReference(m.params, scales->dtype, (*qf)->Data(*(*qf)->Find("layer.weight")),
                                   (*qf)->Data(*scales), biases ? (*qf)->Data(*biases) : nullptr, kRows, kCols, out_dt,
                                   reinterpret_cast<uint8_t*>(want.data()));
    // The requantization the codec makes of those values.
    const DType sdt = quant::ScalesDType(to, out_dt);
    std::string codes(kRows * kCols * 4 / 8, '\0'), rescales(kRows * kCols / 64 * DTypeBits(sdt) / 8, '\0');
    std::string rebiases(rescales.size(), '\0');
    quant::QuantizeRows(to, quant::Rules::kMlxGpu, out_dt, reinterpret_cast<const uint8_t*>(want.data()), kRows, kCols,
                        reinterpret_cast<uint8_t*>(codes.data()), reinterpret_cast<uint8_t*>(rescales.data()),
                        reinterpret_cast<uint8_t*>(rebiases.data()));
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(threads);
      const std::string d = t.Sub(fmt::format("d{}", threads)), rq = t.Sub(fmt::format("rq{}", threads));
      fs::remove_all(d);
      fs::remove_all(rq);
      r = RunForge(fmt::format("dequantize -q --threads {} --src {} --out {}", threads, q, d));
      ASSERT_EQ(r.exit_code, 0) << r.err;
      auto got = st::SafetensorsFile::Open(d + "/model.safetensors");
      ASSERT_TRUE(got.ok());
      EXPECT_TRUE(TensorBytes(**got, "layer.weight") == want);
      r = RunForge(fmt::format("quantize -q --tensor-level --threads {} --src {} --out {} --mode affine --bits 4", threads, q, rq));
      ASSERT_EQ(r.exit_code, 0) << r.err;
      auto re = st::SafetensorsFile::Open(rq + "/model.safetensors");
      ASSERT_TRUE(re.ok());
      EXPECT_TRUE(TensorBytes(**re, "layer.weight") == codes);
      EXPECT_TRUE(TensorBytes(**re, "layer.scales") == rescales);
      EXPECT_TRUE(TensorBytes(**re, "layer.biases") == rebiases);
    }
  }
}

TEST(StreamedQuantize, ANonFiniteValueInALaterBlockIsNamedByItsElementAndNothingIsWritten) {
  TempDir t;
  std::vector<uint16_t> w = Weights();
  const uint64_t bad = 600 * kCols + 7;  // in the third block
  w[bad] = 0x7FC0;                       // bf16 NaN
  const std::string src = WriteMatrix(t, w), out = t.Sub("out");
  for (int threads : {1, 2}) {
    auto r = RunForge(fmt::format(
        "quantize --tensor-level --threads {} --src {} --out {} --mode affine --bits 4", threads, src, out));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const std::string& part : {fmt::format("element {} is nan", bad), std::string("layer.weight"), src})
      EXPECT_NE(r.err.find(part), std::string::npos) << part << " in " << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

}  // namespace
}  // namespace forge
