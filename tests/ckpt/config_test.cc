#include "forge/ckpt/config.h"

#include <gtest/gtest.h>

#include "tests/st/test_files.h"

namespace forge {
namespace {
using json = nlohmann::json;

TEST(Config, NestedVlmConfigFromTransformers) {
  auto c = LoadModelConfig(testing::FixturePath("moe-vlm-hf/config.json"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->nested);
  EXPECT_TRUE(c->has_vision_config);
  EXPECT_EQ(c->model_type, "qwen3_5_moe");
  const TextGeometry& g = c->text;
  EXPECT_EQ(g.hidden, 64);
  EXPECT_EQ(g.experts, 4);
  EXPECT_EQ(g.moe_intermediate, 32);
  EXPECT_EQ(g.conv_channels(), 2 * 2 * 16 + 4 * 16);
  EXPECT_EQ(g.rope_theta, 1e7);
  EXPECT_EQ(g.mtp_layers, 1);
  EXPECT_TRUE(c->missing_fields.empty());
}

TEST(Config, FlatTextConfig) {
  auto c = LoadModelConfig(testing::FixturePath("dense-text-hf/config.json"));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->nested);
  EXPECT_EQ(c->text.intermediate, 128);
  EXPECT_FALSE(c->text.tie_word_embeddings);
}

TEST(Config, LayerTypesDerivedFromIntervalAndMissingFieldsRecorded) {
  json j = {{"hidden_size", 8}, {"num_hidden_layers", 8}, {"full_attention_interval", 4}, {"vocab_size", 10}};
  auto c = ParseModelConfig(j, "config.json");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->text.layer_types_derived);
  EXPECT_EQ(c->text.layer_types[3], "full_attention");
  EXPECT_EQ(c->text.layer_types[4], "linear_attention");
  EXPECT_EQ(c->text.CountLayers("full_attention"), 2);
  EXPECT_FALSE(c->missing_fields.empty());  // heads, head_dim, linear_* ... never defaulted
}

TEST(Config, WrongTypeIsAnErrorNamingTheField) {
  json j = {{"text_config", {{"hidden_size", "64"}}}};
  auto c = ParseModelConfig(j, "x/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().ToString().find("text_config.hidden_size"), std::string::npos);
}

TEST(Config, QuantizationOverridesWithoutModeAreAffine) {
  json j = {{"quantization", {{"group_size", 32}, {"bits", 4}, {"mode", "mxfp4"},
                              {"language_model.model.layers.0.mlp.gate", {{"group_size", 64}, {"bits", 8}}},
                              {"language_model.model.layers.0.mlp.gate_proj", false},
                              {"vision", "fp16_passthrough"}}}};
  auto c = ParseModelConfig(j, "config.json");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->quant.has_value());
  EXPECT_EQ(c->quant->top->mode, "mxfp4");
  auto gate = c->quant->For("language_model.model.layers.0.mlp.gate");
  ASSERT_TRUE(gate.has_value());
  EXPECT_EQ(gate->mode, "affine");
  EXPECT_EQ(gate->bits, 8);
  EXPECT_FALSE(c->quant->For("language_model.model.layers.0.mlp.gate_proj").has_value());
  EXPECT_EQ(c->quant->For("other")->mode, "mxfp4");
  EXPECT_EQ(c->quant->ignored_keys, std::vector<std::string>{"vision"});
}

}  // namespace
}  // namespace forge
