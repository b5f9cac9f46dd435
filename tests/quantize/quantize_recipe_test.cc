// forge quantize / dequantize end to end.
#include "graft/quantize_recipe.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>

#include <gtest/gtest.h>

#include "forge/base/float_access.h"
#include "forge/plan/writer.h"
#include "inspect/classify.h"
#include "quantize/codec.h"
#include "tests/st/test_files.h"

namespace forge::graft {
namespace {
namespace fs = std::filesystem;
using namespace testing;

std::string Write(const QuantizeRecipe& r, const std::string& out) {
  plan::WriteOptions w;
  w.progress = false;
  w.metadata = r.metadata;
  w.config = r.config;
  auto rep = plan::WritePlan(r.plan, out, w);
  EXPECT_TRUE(rep.ok()) << rep.status().ToString();
  return out;
}

QuantizeOptions Opts(quant::QuantParams top, quant::Rules rules = quant::Rules::kMlxGpu) {
  QuantizeOptions o;
  o.policy.top = top;
  o.rules = rules;
  return o;
}

// Tensor-level mode on the MLX reference inputs, through plan and writer: the output equals MLX's own files.
TEST(QuantizeCommand, TensorLevelModeReproducesMlxFilesThroughTheWriter) {
  const std::regex re(R"(q_(bf16|f16|f32)_(affine|mxfp4|mxfp8|nvfp4)_b(\d+)_g(\d+)\.safetensors)");
  int files = 0;
  for (const char* dir : {"mlx-quant-vectors", "mlx-gpu-rule-vectors"}) {
    const quant::Rules rules = std::string(dir) == "mlx-quant-vectors" ? quant::Rules::kMlxCpu : quant::Rules::kMlxGpu;
    for (const auto& e : fs::directory_iterator(FixturePath(dir))) {
      std::smatch m;
      const std::string name = e.path().filename().string();
      if (!std::regex_match(name, m, re) || (m[3].str() != "4" && m[3].str() != "8")) continue;
      auto in = Checkpoint::Open(FixturePath("mlx-quant-vectors/in_" + m[1].str() + ".safetensors"));
      ASSERT_TRUE(in.ok());
      auto r = BuildQuantizeRecipe(**in, Opts({*quant::ParseQuantMode(m[2].str()), std::stoi(m[3].str()), std::stoi(m[4].str())}, rules));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->input_kind, "tensors");
      TempDir t;
      Write(*r, t.Sub("out"));
      auto got = Checkpoint::Open(t.Sub("out")), want = Checkpoint::Open(e.path().string());
      ASSERT_TRUE(got.ok() && want.ok());
      for (const auto& [tn, ref] : (*want)->tensors()) {
        auto g = (*got)->Find(tn);
        ASSERT_TRUE(g.has_value()) << name << " " << tn;
        ASSERT_EQ(g->info->nbytes(), ref.info->nbytes());
        EXPECT_EQ(0, std::memcmp(g->file->Data(*g->info), ref.file->Data(*ref.info), ref.info->nbytes())) << dir << "/" << name << " " << tn;
      }
      ++files;
    }
  }
  EXPECT_EQ(files, 2 * (3 * 3 * 2 + 9));  // affine 4 and 8 bits x 3 groups x 3 dtypes, + 9 fp files, per set
}

struct Quantized {
  TempDir dir;
  inspect::Report report;
  nlohmann::json config;
};

std::unique_ptr<Quantized> QuantizeFixture(const std::string& fixture, QuantizeOptions o) {
  auto q = std::make_unique<Quantized>();
  auto ckpt = Checkpoint::Open(FixturePath(fixture));
  auto r = BuildQuantizeRecipe(**ckpt, std::move(o));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  Write(*r, q->dir.Sub("q"));
  q->report = inspect::InspectCheckpoint(**Checkpoint::Open(q->dir.Sub("q")));
  q->config = ReadJson(q->dir.Sub("q/config.json"));
  return q;
}

TEST(QuantizeCommand, EveryModeOnEveryLayoutIsReadyAndConsistent) {
  for (const char* fixture : {"dense-vlm-hf", "moe-vlm-hf", "moe36-vlm-mlx", "dense-text-hf"}) {
    for (quant::QuantMode mode : {quant::QuantMode::kAffine, quant::QuantMode::kMxfp4, quant::QuantMode::kMxfp8, quant::QuantMode::kNvfp4}) {
      auto q = QuantizeFixture(fixture, Opts(quant::DefaultParams(mode)));
      const auto& r = q->report;
      EXPECT_EQ(r.exit_code, ExitCode::kOk) << fixture << " " << quant::QuantModeName(mode) << ": " << (r.problems.empty() ? "" : r.problems[0]);
      ASSERT_TRUE(r.quant.top.has_value());
      EXPECT_EQ(r.quant.top->mode, quant::QuantModeName(mode));
      EXPECT_EQ(q->config["quantization"], q->config["quantization_config"]);
      for (auto it = q->config["quantization"].begin(); it != q->config["quantization"].end(); ++it) {
        if (it->is_object()) {
          EXPECT_TRUE(it->contains("mode")) << it.key();  // overrides always carry mode
        }
      }
      // Never quantized: norms, conv1d, A_log, dt_bias, vision; mtp.fc float by default.
      for (const auto& m : r.quant.quantized_modules) {
        EXPECT_EQ(m.find("norm"), std::string::npos) << m;
        EXPECT_EQ(m.find("conv1d"), std::string::npos) << m;
        EXPECT_EQ(m.find("vision_tower"), std::string::npos) << m;
        EXPECT_NE(m, "language_model.mtp.fc") << m;
      }
      EXPECT_GT(r.quant.quantized_by_part.at("mtp"), 0);
    }
  }
}

TEST(QuantizeCommand, MtpPolicies) {
  auto has = [](const inspect::Report& r, const std::string& m) {
    return std::find(r.quant.quantized_modules.begin(), r.quant.quantized_modules.end(), m) != r.quant.quantized_modules.end();
  };
  QuantizeOptions keep = Opts(quant::DefaultParams(quant::QuantMode::kAffine));
  keep.policy.mtp = quant::MtpPolicy::kKeep;
  EXPECT_EQ(QuantizeFixture("moe-vlm-hf", keep)->report.quant.quantized_by_part.count("mtp"), 0u);
  QuantizeOptions match = Opts(quant::DefaultParams(quant::QuantMode::kAffine));
  match.policy.mtp = quant::MtpPolicy::kMatch;
  EXPECT_TRUE(has(QuantizeFixture("moe-vlm-hf", match)->report, "language_model.mtp.fc"));
  QuantizeOptions exp = Opts(quant::DefaultParams(quant::QuantMode::kAffine));
  exp.policy.mtp = quant::MtpPolicy::kExplicit;
  exp.policy.mtp_params = quant::DefaultParams(quant::QuantMode::kMxfp8);
  auto q = QuantizeFixture("moe-vlm-hf", exp);
  EXPECT_EQ(q->config["quantization"]["language_model.mtp.fc"]["mode"], "mxfp8");
  EXPECT_EQ(q->config["quantization"]["language_model.mtp.layers.0.self_attn.q_proj"]["mode"], "mxfp8");
  EXPECT_EQ(q->report.exit_code, ExitCode::kOk);
}

TEST(QuantizeCommand, SkipAndOverrideRulesLastMatchWins) {
  QuantizeOptions o = Opts(quant::DefaultParams(quant::QuantMode::kAffine));
  o.policy.rules = {{"*.mlp.*", quant::QuantParams{quant::QuantMode::kAffine, 8, 32}}, {"*.mlp.down_proj", std::nullopt}};
  auto a = QuantizeFixture("dense-vlm-hf", o);
  EXPECT_EQ(a->config["quantization"]["language_model.model.layers.0.mlp.up_proj"]["bits"], 8);
  EXPECT_FALSE(a->config["quantization"].contains("language_model.model.layers.0.mlp.down_proj"));
  EXPECT_FALSE(fs::exists(a->dir.Sub("never")));
  auto down = Checkpoint::Open(a->dir.Sub("q")).value()->Find("language_model.model.layers.0.mlp.down_proj.scales");
  EXPECT_FALSE(down.has_value());  // skipped modules get no .scales
  std::swap(o.policy.rules[0], o.policy.rules[1]);
  auto b = QuantizeFixture("dense-vlm-hf", o);
  EXPECT_EQ(b->config["quantization"]["language_model.model.layers.0.mlp.down_proj"]["bits"], 8);
}

TEST(QuantizeCommand, RequantizeMxfp8ToAffineFromTheDequantizedValues) {
  auto mx = QuantizeFixture("dense-vlm-mlx", Opts(quant::DefaultParams(quant::QuantMode::kMxfp8)));
  ASSERT_EQ(mx->report.exit_code, ExitCode::kOk);
  auto src = Checkpoint::Open(mx->dir.Sub("q"));
  auto r = BuildQuantizeRecipe(**src, Opts(quant::DefaultParams(quant::QuantMode::kAffine)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->input_kind, "mlx-quantized");
  TempDir t;
  Write(*r, t.Sub("a4"));
  auto out = Checkpoint::Open(t.Sub("a4"));
  auto report = inspect::InspectCheckpoint(**out);
  EXPECT_EQ(report.exit_code, ExitCode::kOk);
  EXPECT_EQ(inspect::QuantSpecString(*report.quant.top), "affine:4:64");
  // One module by hand: dequantize the mxfp8 codes (MLX default bf16), quantize affine 4/64 (GPU rules).
  const std::string m = "language_model.model.layers.0.mlp.up_proj";
  auto w = (*src)->Find(m + ".weight"), s = (*src)->Find(m + ".scales");
  const uint64_t rows = w->info->shape[0], k = w->info->shape[1] * 32 / 8;
  std::vector<uint8_t> deq(rows * k * 2), packed(rows * k / 2), scales(rows * k / 64 * 2), biases(scales.size());
  quant::DequantizeRows({quant::QuantMode::kMxfp8, 8, 32}, DType::kU8, w->file->Data(*w->info), s->file->Data(*s->info),
                        nullptr, rows, k, DType::kBF16, deq.data());
  quant::QuantizeRows({quant::QuantMode::kAffine, 4, 64}, quant::Rules::kMlxGpu, DType::kBF16, deq.data(), rows, k,
                      packed.data(), scales.data(), biases.data());
  auto ow = (*out)->Find(m + ".weight"), os = (*out)->Find(m + ".scales"), ob = (*out)->Find(m + ".biases");
  EXPECT_EQ(0, std::memcmp(ow->file->Data(*ow->info), packed.data(), packed.size()));
  EXPECT_EQ(0, std::memcmp(os->file->Data(*os->info), scales.data(), scales.size()));
  EXPECT_EQ(0, std::memcmp(ob->file->Data(*ob->info), biases.data(), biases.size()));
}

TEST(QuantizeCommand, DequantizeRestoresFloatsAndConfig) {
  auto q = QuantizeFixture("dense-vlm-mlx", Opts(quant::DefaultParams(quant::QuantMode::kAffine)));
  auto src = Checkpoint::Open(q->dir.Sub("q"));
  auto r = BuildDequantizeRecipe(**src, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  TempDir t;
  Write(*r, t.Sub("f"));
  auto f = Checkpoint::Open(t.Sub("f"));
  auto report = inspect::InspectCheckpoint(**f);
  EXPECT_EQ(report.exit_code, ExitCode::kOk);
  EXPECT_FALSE(report.quant.quantized());
  EXPECT_FALSE(ReadJson(t.Sub("f/config.json")).contains("quantization"));
  auto orig = Checkpoint::Open(FixturePath("dense-vlm-mlx"));
  EXPECT_EQ((*f)->tensors().size(), (*orig)->tensors().size());
  // 4-bit affine error per element is at most half a step: |scale| / 2 (+ bf16 rounding of the result).
  auto a = (*orig)->Find("language_model.model.embed_tokens.weight"), b = (*f)->Find("language_model.model.embed_tokens.weight");
  double max_err = 0;
  for (uint64_t i = 0; i < a->info->numel(); ++i) {
    max_err = std::max<double>(max_err, std::fabs(LoadAsF32(DType::kBF16, a->file->Data(*a->info), i) -
                                                  LoadAsF32(DType::kBF16, b->file->Data(*b->info), i)));
  }
  EXPECT_LT(max_err, 0.05);
  auto again = BuildDequantizeRecipe(**orig, std::nullopt);
  EXPECT_EQ(again.status().code(), ExitCode::kNothingToDo);
}

TEST(QuantizeCommand, OutputIsDeterministicAcrossThreadCounts) {
  auto ckpt = Checkpoint::Open(FixturePath("moe-vlm-hf"));
  TempDir t;
  for (unsigned threads : {1u, 3u}) {
    QuantizeOptions o = Opts(quant::DefaultParams(quant::QuantMode::kNvfp4));
    o.measure_fidelity = true;
    auto r = BuildQuantizeRecipe(**ckpt, o);
    ASSERT_TRUE(r.ok());
    plan::WriteOptions w;
    w.progress = false;
    w.threads = threads;
    w.max_shard_size = 100'000;
    w.metadata = r->metadata;
    w.config = r->config;
    ASSERT_TRUE(plan::WritePlan(r->plan, t.Sub(threads == 1 ? "t1" : "t3"), w).ok());
  }
  int files = 0;
  for (const auto& e : fs::directory_iterator(t.Sub("t1"))) {
    EXPECT_EQ(FirstDifference(e.path().string(), t.Sub("t3/") + e.path().filename().string()), "");
    ++files;
  }
  EXPECT_GT(files, 3);
}

TEST(QuantizeCommand, NanIsAnErrorNamingTheTensorAndNothingIsWritten) {
  TempDir t;
  std::vector<float> v(64 * 64, 0.5f);
  v[100] = std::nanf("");
  std::string bytes = SafetensorsBytes(R"({"x.weight":{"dtype":"F32","shape":[64,64],"data_offsets":[0,16384]}})", 0);
  bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  fs::create_directory(t.Sub("src"));
  WriteFile(t.Sub("src/model.safetensors"), bytes);
  auto src = Checkpoint::Open(t.Sub("src"));  // must outlive the plan, which reads its mapping
  auto r = BuildQuantizeRecipe(**src, Opts(quant::DefaultParams(quant::QuantMode::kAffine)));
  ASSERT_TRUE(r.ok());
  plan::WriteOptions w;
  w.progress = false;
  auto rep = plan::WritePlan(r->plan, t.Sub("out"), w);
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.status().tensor(), "x.weight");
  EXPECT_NE(rep.status().message().find("nan"), std::string::npos);
  EXPECT_FALSE(fs::exists(t.Sub("out")));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(t.path())) ++entries;
  EXPECT_EQ(entries, 1);  // only src: no temporary directory left
}

}  // namespace
}  // namespace forge::graft
