#include "tests/verify/reference_helpers.h"

#include <cmath>
#include <fstream>

#include "forge/base/float_access.h"
#include "tests/st/test_files.h"

namespace forge::testing {
namespace {

std::vector<std::vector<float>> Matrix2D(const st::SafetensorsFile& f, const std::string& name) {
  const st::TensorInfo* t = f.Find(name);
  if (!t) return {};
  std::vector<std::vector<float>> m(t->shape[0], std::vector<float>(t->shape[1]));
  const uint8_t* d = f.Data(*t);
  for (uint64_t i = 0; i < t->shape[0]; ++i) {
    for (uint64_t j = 0; j < t->shape[1]; ++j) m[i][j] = LoadAsF32(t->dtype, d, i * t->shape[1] + j);
  }
  return m;
}

}  // namespace

std::vector<ReferenceCase> LoadReference(const std::string& name) {
  const std::string dir = FixturePath("references");
  const nlohmann::json j = ReadJson(dir + "/" + name + ".tokens.json");
  // Prefer the float64 references where they were made (scripts/reference_f64.py): at ill-conditioned
  // positions transformers' f32 result is itself ~1e-3 from the exact value.
  const std::string f64 = dir + "/" + name + ".f64.logits.safetensors";
  const bool exact = std::ifstream(f64).good();
  auto f = st::SafetensorsFile::Open(exact ? f64 : dir + "/" + name + ".logits.safetensors");
  EXPECT_TRUE(f.ok()) << name;
  std::vector<ReferenceCase> cases;
  for (size_t i = 0; i < j["cases"].size(); ++i) {
    const auto& c = j["cases"][i];
    ReferenceCase r;
    r.float64 = exact;
    r.prompt = c["prompt"].get<std::vector<int64_t>>();
    r.greedy = c["greedy"].get<std::vector<int64_t>>();
    if (c.contains("mtp_post_norm_argmax")) {
      r.mtp_post_argmax = c["mtp_post_norm_argmax"].get<std::vector<int64_t>>();
      r.mtp_pre_argmax = c["mtp_pre_norm_argmax"].get<std::vector<int64_t>>();
    }
    const std::string p = "case" + std::to_string(i) + ".";
    r.step_logits = Matrix2D(**f, p + "step_logits");
    r.mtp_post_logits = Matrix2D(**f, p + "mtp_post_norm_logits");
    r.mtp_pre_logits = Matrix2D(**f, p + "mtp_pre_norm_logits");
    cases.push_back(std::move(r));
  }
  return cases;
}

LoadedModel LoadModel(const std::string& dir) {
  LoadedModel m;
  auto c = Checkpoint::Open(dir);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  if (!c.ok()) return m;
  m.ckpt = std::move(*c);
  auto w = verify::model::LoadModelWeights(*m.ckpt);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (w.ok()) m.weights = std::make_unique<verify::model::ModelWeights>(std::move(*w));
  return m;
}

float MaxAbsDiff(const float* a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace forge::testing
