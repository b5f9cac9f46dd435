// config.json of a Qwen3.5/3.6 checkpoint: nested (text_config/vision_config, VLM) or flat (text-only).
//
// Only what forge needs is interpreted; the raw JSON is kept so writers can rewrite it key by key.
// Missing geometry fields are recorded, never defaulted (mlx-lm's defaults are not Qwen3.5's, spec §1.2).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "forge/base/status.h"

namespace forge {

struct TextGeometry {
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  std::vector<std::string> layer_types;  // "linear_attention" / "full_attention", one per layer
  bool layer_types_derived = false;      // built from full_attention_interval
  int64_t linear_k_heads = 0, linear_v_heads = 0, linear_k_dim = 0, linear_v_dim = 0, conv_kernel = 0;
  int64_t intermediate = 0;                                                   // dense MLP width
  int64_t experts = 0, experts_per_tok = 0, moe_intermediate = 0, shared_intermediate = 0;  // MoE
  bool tie_word_embeddings = false;
  double rms_norm_eps = 0, rope_theta = 0, partial_rotary_factor = 0;
  int64_t max_position_embeddings = 0;  // 0: not given
  bool mtp_declared = false;  // mtp_num_hidden_layers present
  int64_t mtp_layers = 0;
  bool mtp_dedicated_embeddings = false;

  bool is_moe() const { return experts > 0; }
  int64_t conv_channels() const { return 2 * linear_k_heads * linear_k_dim + linear_v_heads * linear_v_dim; }
  int CountLayers(const std::string& type) const;
};

struct QuantSpec {
  std::string mode = "affine";
  int bits = 0;
  int group_size = 0;
  bool operator==(const QuantSpec& o) const {
    return mode == o.mode && bits == o.bits && group_size == o.group_size;
  }
};

// The rule a quantization entry breaks (MLX's supported modes, bits and group sizes), or nullopt. The one
// check every command applies to config.json; `forge quantize`'s flags go through the same rule.
std::optional<std::string> QuantSpecProblem(const QuantSpec& q);

struct QuantConfig {
  std::string source_key;  // "quantization" or "quantization_config"
  std::optional<QuantSpec> top;  // absent for legacy quant_method-only configs
  std::string legacy_method;     // quantization_config.quant_method, if any
  std::map<std::string, std::optional<QuantSpec>> overrides;  // module path -> params (nullopt = false)
  std::vector<std::string> ignored_keys;                      // non-path keys (third-party notes)

  // Parameters for a module path: its override, else the top level.
  std::optional<QuantSpec> For(const std::string& module_path) const;
};

struct ModelConfig {
  nlohmann::json raw;
  bool nested = false;  // text fields live under "text_config"
  std::string model_type, text_model_type, architecture;
  bool has_vision_config = false;
  TextGeometry text;
  std::optional<QuantConfig> quant;
  std::vector<std::string> missing_fields;  // required for the geometry, absent

  const nlohmann::json& text_json() const { return nested ? raw.at("text_config") : raw; }
};

// `path` is used in messages only. Type errors (a string where a number belongs) fail with exit 1.
Result<ModelConfig> ParseModelConfig(const nlohmann::json& raw, const std::string& path);
Result<ModelConfig> LoadModelConfig(const std::string& path);

}  // namespace forge
