// inspect on every fixture (made by transformers / the independent PyTorch converter) and on hand-made
// variants covering each MTP status and structural problem.
#include "inspect/classify.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "forge/plan/writer.h"
#include "tests/st/test_files.h"

namespace forge::inspect {
namespace {
using namespace testing;

struct Expect {
  std::string fixture, format, backbone, mtp_layout, norms, status;
  int exit_code;
};

void PrintTo(const Expect& e, std::ostream* os) { *os << e.fixture; }

class Fixtures : public ::testing::TestWithParam<Expect> {};

TEST_P(Fixtures, Classified) {
  const Expect& x = GetParam();
  auto c = Checkpoint::Open(FixturePath(x.fixture));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Report r = InspectCheckpoint(**c);
  EXPECT_EQ(r.format, x.format);
  EXPECT_EQ(ExpertLayoutName(r.backbone_layout), x.backbone);
  EXPECT_EQ(ExpertLayoutName(r.mtp_layout), x.mtp_layout);
  EXPECT_EQ(NormConventionName(r.norms.overall), x.norms);
  EXPECT_EQ(MtpStatusName(r.mtp.status), x.status);
  EXPECT_EQ(static_cast<int>(r.exit_code), x.exit_code) << (r.problems.empty() ? "" : r.problems.front());
  if (x.exit_code == 0) {
    EXPECT_TRUE(r.problems.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, Fixtures,
    ::testing::Values(Expect{"dense-vlm-hf", "hf", "dense", "dense", "zero_centered", "ready", 0},
                      Expect{"dense-text-hf", "hf", "dense", "dense", "zero_centered", "ready", 0},
                      Expect{"dense-other-hf", "hf", "dense", "dense", "zero_centered", "ready", 0},
                      Expect{"moe-vlm-hf", "hf", "fused", "per_expert", "zero_centered", "ready", 0},
                      Expect{"moe36-vlm-hf", "hf", "fused", "fused", "zero_centered", "ready", 0},
                      Expect{"moe-vlm-hf-perexpert", "hf", "per_expert", "per_expert", "zero_centered", "ready", 0},
                      Expect{"dense-vlm-finetune-nomtp", "hf", "dense", "none", "zero_centered", "declared_but_missing", 3},
                      Expect{"moe-vlm-finetune-nomtp", "hf", "per_expert", "none", "zero_centered", "declared_but_missing", 3},
                      Expect{"dense-vlm-mlx", "mlx", "dense", "dense", "shifted", "ready", 0},
                      Expect{"moe-vlm-mlx", "mlx", "switch_mlp", "switch_mlp", "shifted", "ready", 0},
                      Expect{"moe36-vlm-mlx", "mlx", "switch_mlp", "switch_mlp", "shifted", "ready", 0},
                      Expect{"moe-vlm-mlx-mixed", "mlx", "switch_mlp", "switch_mlp", "mixed", "ready", 4},
                      Expect{"dense-vlm-mlx-q4", "mlx", "dense", "dense", "shifted", "ready", 0}),
    [](const auto& param_info) {
      std::string n = param_info.param.fixture;
      for (auto& ch : n) if (ch == '-') ch = '_';
      return n;
    });

TEST(Inspect, QuantizationReport) {
  auto c = Checkpoint::Open(FixturePath("dense-vlm-mlx-q4"));
  Report r = InspectCheckpoint(**c);
  ASSERT_TRUE(r.quant.top.has_value());
  EXPECT_EQ(QuantSpecString(*r.quant.top), "affine:4:64");
  EXPECT_EQ(r.quant.quantized_by_part["mtp"], 8);  // fc + 4 attention + 3 mlp
  EXPECT_EQ(r.quant.quantized_by_part["language_model"], 32);
  EXPECT_TRUE(r.quant.SpecOf("language_model.mtp.fc").has_value());
  EXPECT_FALSE(r.quant.SpecOf("vision_tower.merger.linear_fc1").has_value());
}

// Variants built by copying a fixture and editing it.
class Variant : public ::testing::Test {
 protected:
  std::string Copy(const std::string& fixture) {
    CopyTree(FixturePath(fixture), tmp_.Sub("c"));
    return tmp_.Sub("c");
  }
  void EditConfig(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
    auto j = ReadJson(dir + "/config.json");
    edit(j);
    WriteJson(dir + "/config.json", j);
  }
  // Rewrites `fixture` without the tensors `drop` rejects, through forge's writer.
  std::string Without(const std::string& fixture, const std::function<bool(const std::string&)>& drop) {
    auto src = Checkpoint::Open(FixturePath(fixture));
    auto p = plan::IdentityPlan(**src);
    plan::Plan kept;
    for (auto& t : p->tensors) if (!drop(t.name)) kept.tensors.push_back(t);
    plan::WriteOptions w;
    w.progress = false;
    w.config = (*src)->config()->raw;
    EXPECT_TRUE(plan::WritePlan(kept, tmp_.Sub("w"), w).ok());
    return tmp_.Sub("w");
  }
  Report Inspect(const std::string& dir) {
    auto c = Checkpoint::Open(dir);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return InspectCheckpoint(**c);
  }
  TempDir tmp_;
};

TEST_F(Variant, PresentButUndeclared) {
  std::string d = Copy("moe-vlm-hf");
  EditConfig(d, [](auto& j) { j["text_config"].erase("mtp_num_hidden_layers"); });
  Report r = Inspect(d);
  EXPECT_EQ(MtpStatusName(r.mtp.status), "present_but_undeclared");
  EXPECT_EQ(r.exit_code, ExitCode::kMtpMismatch);
  EXPECT_NE(r.fix.find("fix-config"), std::string::npos);
}

TEST_F(Variant, Absent) {
  std::string d = Without("dense-vlm-finetune-nomtp", [](const std::string&) { return false; });
  EditConfig(d, [](auto& j) { j["text_config"]["mtp_num_hidden_layers"] = 0; });
  Report r = Inspect(d);
  EXPECT_EQ(MtpStatusName(r.mtp.status), "absent");
  EXPECT_EQ(r.exit_code, ExitCode::kNothingToDo);
}

TEST_F(Variant, IncompleteListsTheMissingTensors) {
  std::string d = Without("moe-vlm-hf", [](const std::string& n) {
    return n == "mtp.layers.0.mlp.experts.2.up_proj.weight" || n == "mtp.pre_fc_norm_hidden.weight";
  });
  Report r = Inspect(d);
  EXPECT_EQ(MtpStatusName(r.mtp.status), "incomplete");
  EXPECT_EQ(r.exit_code, ExitCode::kMtpMismatch);
  EXPECT_EQ(r.mtp.missing, (std::vector<std::string>{"mtp.pre_fc_norm_hidden.weight",
                                                     "mtp.layers.0.mlp.experts.2.up_proj.weight"}));
}

TEST_F(Variant, MissingTrunkTensorIsStructural) {
  std::string d = Without("moe36-vlm-hf", [](const std::string& n) {
    return n == "model.language_model.layers.1.linear_attn.in_proj_z.weight";
  });
  Report r = Inspect(d);
  EXPECT_EQ(r.exit_code, ExitCode::kStructural);
  ASSERT_FALSE(r.problems.empty());
  EXPECT_NE(r.problems.front().find("layers.1.linear_attn.in_proj_z.weight"), std::string::npos);
}

TEST_F(Variant, ShapesInconsistentWithConfigAreStructural) {
  std::string d = Copy("dense-vlm-hf");
  EditConfig(d, [](auto& j) { j["text_config"]["intermediate_size"] = 96; });
  Report r = Inspect(d);
  EXPECT_EQ(r.exit_code, ExitCode::kStructural);
  EXPECT_NE(r.problems.front().find("config.json implies"), std::string::npos);
}

TEST_F(Variant, MissingConfigFieldIsStructural) {
  std::string d = Copy("dense-vlm-hf");
  EditConfig(d, [](auto& j) { j["text_config"].erase("head_dim"); });
  Report r = Inspect(d);
  EXPECT_EQ(r.exit_code, ExitCode::kStructural);
  EXPECT_NE(r.problems.front().find("text_config.head_dim"), std::string::npos);
}

TEST_F(Variant, QuantizedTensorsWithoutConfigAreStructural) {
  std::string d = Copy("dense-vlm-mlx-q4");
  EditConfig(d, [](auto& j) { j.erase("quantization"); j.erase("quantization_config"); });
  Report r = Inspect(d);
  EXPECT_EQ(r.exit_code, ExitCode::kStructural);
}

}  // namespace
}  // namespace forge::inspect
