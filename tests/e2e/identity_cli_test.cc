// `forge verify --identity` end to end: the README pipeline (graft a head into the trained fine-tune,
// quantize in every mode, verify at depths 1..3), the JSON contract, prompts as ids/text/JSONL, and the
// documented exit codes (0 identical, 2 no head, 4 structural, 64 usage).
#include <gtest/gtest.h>

#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;

nlohmann::json Json(const CommandResult& r) { return nlohmann::json::parse(r.out, nullptr, false); }

TEST(IdentityCli, JsonContractOnTheTrainedFixture) {
  auto r =
      RunForge("verify --identity --json --max-tokens 24 --depth 2 --model " + FixturePath("trained-vlm-hf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = Json(r);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_TRUE(j["identical"].get<bool>());
  EXPECT_EQ(j["depth"], 2);
  EXPECT_EQ(j["mtp_hidden"], "post-norm");
  ASSERT_EQ(j["prompts"].size(), 3u);  // the default prompts, encoded with the checkpoint's tokenizer
  for (const auto& p : j["prompts"]) {
    EXPECT_EQ(p["vanilla"], p["mtp"]);
    EXPECT_EQ(p["vanilla"].size(), 24u);
    EXPECT_LE(p["accepted"].get<int>(), p["drafted"].get<int>());
    EXPECT_EQ(p["per_position"].size(), 2u);
    EXPECT_TRUE(p.contains("prompt_text"));
  }
  EXPECT_GT(j["acceptance"].get<double>(), 0.0);
  EXPECT_GT(j["tokens_per_s"]["vanilla"].get<double>(), 0.0);
}

TEST(IdentityCli, PromptsAsTextIdsAndJsonl) {
  const std::string model = FixturePath("trained-vlm-hf");
  auto t = RunForge("verify --identity --json --max-tokens 8 --prompt 'def add(a, b):\n' --model " + model);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(Json(t)["prompts"][0]["prompt_text"], "def add(a, b):\n");  // decodes back to the prompt
  auto ids = RunForge("verify --identity --json --max-tokens 8 --prompt-tokens 1,2,3 --model " + model);
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  EXPECT_EQ(Json(ids)["prompts"][0]["prompt"], nlohmann::json::array({1, 2, 3}));
  TempDir dir;
  WriteFile(dir.Sub("p.jsonl"), "{\"prompt\": \"import os\\n\"}\n\n{\"tokens\": [5, 6]}\n");
  auto f = RunForge("verify --identity --json --max-tokens 8 --prompts " + dir.Sub("p.jsonl") + " --model " +
                    model);
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(Json(f)["prompts"].size(), 2u);
  WriteFile(dir.Sub("bad.jsonl"), "{\"tokens\": [5, 99999]}\n");
  auto bad = RunForge("verify --identity --prompts " + dir.Sub("bad.jsonl") + " --model " + model);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("bad.jsonl:1"), std::string::npos) << bad.err;
}

TEST(IdentityCli, ExitCodes) {
  auto none = RunForge("verify --identity --model " + FixturePath("trained-vlm-finetune-nomtp"));
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no MTP head"), std::string::npos);
  EXPECT_EQ(RunForge("verify --identity --depth 5 --model " + FixturePath("trained-vlm-hf")).exit_code, 64);
  EXPECT_EQ(
      RunForge("verify --identity --prompt-tokens 1,x --model " + FixturePath("trained-vlm-hf")).exit_code,
      64);
  EXPECT_EQ(
      RunForge("verify --identity --mtp-hidden middle --model " + FixturePath("trained-vlm-hf")).exit_code,
      64);
  // Config and tensors disagreeing: a structural error naming the file, the tensor and the rule.
  TempDir dir;
  CopyTree(FixturePath("trained-vlm-hf"), dir.Sub("m"));
  nlohmann::json cfg = ReadJson(dir.Sub("m/config.json"));
  cfg["text_config"]["intermediate_size"] = 400;
  WriteJson(dir.Sub("m/config.json"), cfg);
  auto s = RunForge("verify --identity --model " + dir.Sub("m"));
  EXPECT_EQ(s.exit_code, 4);
  EXPECT_NE(s.err.find("model.safetensors: tensor 'model.language_model.layers.0.mlp.gate_proj.weight'"),
            std::string::npos)
      << s.err;
  EXPECT_NE(s.err.find("config.json implies 400 rows"), std::string::npos) << s.err;
}

TEST(IdentityCli, GraftQuantizeVerifyPipeline) {
  TempDir dir;
  const std::string g = dir.Sub("grafted");
  auto graft = RunForge("graft -q --src " + FixturePath("trained-vlm-finetune-nomtp") + " --mtp-from " +
                        FixturePath("trained-vlm-hf") + " --out " + g);
  ASSERT_EQ(graft.exit_code, 0) << graft.err;
  for (const std::string mode : {"affine --bits 4", "mxfp4", "mxfp8", "nvfp4"}) {
    const std::string q = dir.Sub("q");
    auto quant = RunForge("quantize -q --force --src " + g + " --out " + q + " --mode " + mode);
    ASSERT_EQ(quant.exit_code, 0) << mode << ": " << quant.err;
    for (int depth = 1; depth <= 3; ++depth) {
      auto v = RunForge("verify --identity --json --max-tokens 16 --depth " + std::to_string(depth) +
                        " --model " + q);
      ASSERT_EQ(v.exit_code, 0) << mode << " depth " << depth << ": " << v.err;
      const auto j = Json(v);
      EXPECT_TRUE(j["identical"].get<bool>());
      EXPECT_GT(j["accepted"].get<int>(), 0) << mode << " depth " << depth;  // the grafted head still drafts
    }
  }
}

}  // namespace
}  // namespace forge
