#include "forge/ckpt/config.h"

#include <fmt/format.h>

#include <algorithm>

#include "forge/base/fs_util.h"
#include "forge/base/json_text.h"
#include "forge/base/quant_rules.h"

namespace forge {
namespace {

using json = nlohmann::json;

class FieldReader {
 public:
  FieldReader(const json& obj, std::string prefix, std::string path, std::vector<std::string>* missing)
      : obj_(obj), prefix_(std::move(prefix)), path_(std::move(path)), missing_(missing) {}

  Status Int(const char* key, int64_t* out, bool required) {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) {
      if (required) missing_->push_back(prefix_ + key);
      return Status();
    }
    if (!it->is_number_integer()) return TypeError(key, "an integer", *it);
    *out = it->get<int64_t>();
    if (*out < 0) return TypeError(key, "a non-negative integer", *it);
    return Status();
  }
  Status Double(const char* key, double* out, bool required) {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) {
      if (required) missing_->push_back(prefix_ + key);
      return Status();
    }
    if (!it->is_number()) return TypeError(key, "a number", *it);
    *out = it->get<double>();
    return Status();
  }
  Status Bool(const char* key, bool* out) {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return Status();
    if (!it->is_boolean()) return TypeError(key, "a boolean", *it);
    *out = it->get<bool>();
    return Status();
  }

 private:
  Status TypeError(const char* key, const char* want, const json& got) {
    return Status::Invalid(fmt::format("config field '{}{}' must be {}, got {}", prefix_, key, want, got.dump()),
                           path_);
  }
  const json& obj_;
  std::string prefix_, path_;
  std::vector<std::string>* missing_;
};

Result<QuantSpec> ParseQuantSpec(const json& j, const std::string& where, const std::string& path) {
  QuantSpec q;
  auto bad = [&](const std::string& what) {
    return Status::Invalid(fmt::format("quantization entry '{}': {}", where, what), path);
  };
  if (!j.is_object()) return bad("must be an object or false");
  auto bits = j.find("bits"), group = j.find("group_size"), mode = j.find("mode");
  if (bits == j.end() || !bits->is_number_integer()) return bad("missing integer 'bits'");
  if (group == j.end() || !group->is_number_integer()) return bad("missing integer 'group_size'");
  // Read wide, so that 2^40 is refused as 2^40 and not seen as the 0 an int cast would make of it.
  const int64_t b = bits->get<int64_t>(), g = group->get<int64_t>();
  if (b < 0 || b > 64 || g < 0 || g > 1 << 20) {
    return bad(fmt::format("bits {} / group size {} out of range", bits->dump(), group->dump()));
  }
  q.bits = static_cast<int>(b);
  q.group_size = static_cast<int>(g);
  // An entry without "mode" is affine to mlx-lm, whatever the top-level mode (spec §6.1).
  if (mode != j.end()) {
    if (!mode->is_string()) return bad("'mode' must be a string");
    q.mode = mode->get<std::string>();
  }
  if (auto problem = QuantSpecProblem(q)) return bad(*problem);
  return q;
}

Result<std::optional<QuantConfig>> ParseQuant(const json& root, const json& text, const std::string& path) {
  const json* q = nullptr;
  QuantConfig qc;
  for (const json* scope : {&root, &text}) {
    for (const char* key : {"quantization", "quantization_config"}) {
      auto it = scope->find(key);
      if (q == nullptr && it != scope->end() && it->is_object()) {
        q = &*it;
        qc.source_key = key;
      }
    }
  }
  if (q == nullptr) return std::optional<QuantConfig>();
  if (q->contains("bits") && q->contains("group_size")) {
    FORGE_ASSIGN_OR_RETURN(QuantSpec top, ParseQuantSpec(*q, qc.source_key, path));
    qc.top = top;
  }
  if (auto m = q->find("quant_method"); m != q->end() && m->is_string()) qc.legacy_method = m->get<std::string>();
  for (auto it = q->begin(); it != q->end(); ++it) {
    const std::string& k = it.key();
    if (k == "bits" || k == "group_size" || k == "mode" || k == "quant_method") continue;
    if (it->is_boolean() && !it->get<bool>()) {
      qc.overrides[k] = std::nullopt;
    } else if (it->is_object() && it->contains("bits")) {
      FORGE_ASSIGN_OR_RETURN(QuantSpec s, ParseQuantSpec(*it, k, path));
      qc.overrides[k] = s;
    } else {
      qc.ignored_keys.push_back(k);
    }
  }
  return std::optional<QuantConfig>(std::move(qc));
}

// What forge accepts of a geometry field: no Qwen3.5/3.6 model comes near these ceilings, and under them
// every product forge forms from the config (a tensor's shape, bytes, a cache) fits in 64 bits, so no
// hostile value can overflow into a size that then passes the shape checks. Minimums keep divisions and
// per-head splits defined.
struct Bound {
  const char* key;
  int64_t TextGeometry::*field;
  int64_t min, max;
  bool applies;  // the field is used by this geometry (dense vs MoE, linear layers present)
};

Status CheckBounds(const TextGeometry& g, const std::string& prefix, const std::string& path, bool has_linear,
                   const std::vector<std::string>& missing) {
  const bool moe = g.is_moe();
  const Bound bounds[] = {
      {"hidden_size", &TextGeometry::hidden, 1, 1 << 20, true},
      {"num_hidden_layers", &TextGeometry::layers, 1, 1 << 14, true},
      {"num_attention_heads", &TextGeometry::heads, 1, 1 << 16, true},
      {"num_key_value_heads", &TextGeometry::kv_heads, 1, 1 << 16, true},
      {"head_dim", &TextGeometry::head_dim, 1, 1 << 16, true},
      {"vocab_size", &TextGeometry::vocab, 1, 1 << 24, true},
      {"intermediate_size", &TextGeometry::intermediate, moe ? 0 : 1, 1 << 20, true},
      {"num_experts", &TextGeometry::experts, 0, 1 << 16, true},
      {"num_experts_per_tok", &TextGeometry::experts_per_tok, moe ? 1 : 0, moe ? g.experts : 1 << 16, true},
      {"moe_intermediate_size", &TextGeometry::moe_intermediate, moe ? 1 : 0, 1 << 20, true},
      {"shared_expert_intermediate_size", &TextGeometry::shared_intermediate, 0, 1 << 20, true},
      {"linear_num_key_heads", &TextGeometry::linear_k_heads, 1, 1 << 16, has_linear},
      {"linear_num_value_heads", &TextGeometry::linear_v_heads, 1, 1 << 16, has_linear},
      {"linear_key_head_dim", &TextGeometry::linear_k_dim, 1, 1 << 16, has_linear},
      {"linear_value_head_dim", &TextGeometry::linear_v_dim, 1, 1 << 16, has_linear},
      {"linear_conv_kernel_dim", &TextGeometry::conv_kernel, 1, 1 << 10, has_linear},
      {"mtp_num_hidden_layers", &TextGeometry::mtp_layers, 0, 1 << 8, true},
      {"max_position_embeddings", &TextGeometry::max_position_embeddings, 0, int64_t{1} << 31, true},
  };
  for (const Bound& b : bounds) {
    const int64_t v = g.*b.field;
    const bool is_missing = std::find(missing.begin(), missing.end(), prefix + b.key) != missing.end();
    if (!b.applies || is_missing) continue;  // absent: reported as missing (exit 4)
    if (v < b.min || v > b.max) {
      return Status::Invalid(fmt::format("config field '{}{}' is {}, outside what forge accepts [{}, {}]", prefix,
                                         b.key, v, b.min, b.max),
                             path);
    }
  }
  // Heads are split into groups: a count that does not divide leaves a group without its share.
  auto multiple = [&](const char* key, int64_t n, const char* of_key, int64_t of) -> Status {
    if (n <= 0 || of <= 0 || n % of == 0) return Status();
    return Status::Invalid(fmt::format("config field '{}{}' ({}) is not a multiple of {} ({})", prefix, key, n,
                                       of_key, of),
                           path);
  };
  FORGE_RETURN_IF_ERROR(multiple("num_attention_heads", g.heads, "num_key_value_heads", g.kv_heads));
  if (has_linear) {
    FORGE_RETURN_IF_ERROR(
        multiple("linear_num_value_heads", g.linear_v_heads, "linear_num_key_heads", g.linear_k_heads));
  }
  const double eps = g.rms_norm_eps, theta = g.rope_theta, prf = g.partial_rotary_factor;
  if (!(eps >= 0 && eps < 1)) return Status::Invalid(fmt::format("config field '{}rms_norm_eps' is {}, not in [0, 1)", prefix, eps), path);
  if (!(theta >= 0 && theta < 1e30)) return Status::Invalid(fmt::format("config field '{}rope_theta' is {}, not a positive number", prefix, theta), path);
  if (!(prf >= 0 && prf <= 1)) {
    return Status::Invalid(fmt::format("config field '{}partial_rotary_factor' is {}, not in (0, 1]", prefix, prf), path);
  }
  return Status();
}

}  // namespace

std::optional<std::string> QuantSpecProblem(const QuantSpec& q) {
  return QuantParamsProblem(q.mode, q.bits, q.group_size);
}

int TextGeometry::CountLayers(const std::string& type) const {
  int n = 0;
  for (const auto& t : layer_types) n += t == type;
  return n;
}

std::optional<QuantSpec> QuantConfig::For(const std::string& module_path) const {
  auto it = overrides.find(module_path);
  if (it != overrides.end()) return it->second;
  return top;
}

Result<ModelConfig> ParseModelConfig(const json& raw, const std::string& path) {
  if (!raw.is_object()) return Status::Invalid("config.json is not a JSON object", path);
  ModelConfig c;
  c.raw = raw;
  auto tc = raw.find("text_config");
  c.nested = tc != raw.end() && tc->is_object();
  if (tc != raw.end() && !c.nested && !tc->is_null()) return Status::Invalid("'text_config' must be an object", path);
  c.has_vision_config = raw.contains("vision_config") && raw["vision_config"].is_object();
  if (auto mt = raw.find("model_type"); mt != raw.end() && mt->is_string()) c.model_type = mt->get<std::string>();
  if (auto ar = raw.find("architectures"); ar != raw.end() && ar->is_array() && !ar->empty() && (*ar)[0].is_string()) {
    c.architecture = (*ar)[0].get<std::string>();
  }
  const json& t = c.text_json();
  if (auto mt = t.find("model_type"); mt != t.end() && mt->is_string()) c.text_model_type = mt->get<std::string>();

  TextGeometry& g = c.text;
  FieldReader r(t, c.nested ? "text_config." : "", path, &c.missing_fields);
  FORGE_RETURN_IF_ERROR(r.Int("hidden_size", &g.hidden, true));
  FORGE_RETURN_IF_ERROR(r.Int("num_hidden_layers", &g.layers, true));
  FORGE_RETURN_IF_ERROR(r.Int("num_attention_heads", &g.heads, true));
  FORGE_RETURN_IF_ERROR(r.Int("num_key_value_heads", &g.kv_heads, true));
  FORGE_RETURN_IF_ERROR(r.Int("head_dim", &g.head_dim, true));
  FORGE_RETURN_IF_ERROR(r.Int("vocab_size", &g.vocab, true));
  FORGE_RETURN_IF_ERROR(r.Int("num_experts", &g.experts, false));
  const bool moe = g.experts > 0;
  FORGE_RETURN_IF_ERROR(r.Int("intermediate_size", &g.intermediate, !moe));
  FORGE_RETURN_IF_ERROR(r.Int("num_experts_per_tok", &g.experts_per_tok, moe));
  FORGE_RETURN_IF_ERROR(r.Int("moe_intermediate_size", &g.moe_intermediate, moe));
  FORGE_RETURN_IF_ERROR(r.Int("shared_expert_intermediate_size", &g.shared_intermediate, moe));
  FORGE_RETURN_IF_ERROR(r.Double("rms_norm_eps", &g.rms_norm_eps, true));
  FORGE_RETURN_IF_ERROR(r.Int("max_position_embeddings", &g.max_position_embeddings, false));

  // tie_word_embeddings may sit at the top level, in text_config, or both (spec §1.1).
  FORGE_RETURN_IF_ERROR(FieldReader(raw, "", path, &c.missing_fields).Bool("tie_word_embeddings", &g.tie_word_embeddings));
  FORGE_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &g.tie_word_embeddings));

  if (auto rp = t.find("rope_parameters"); rp != t.end() && rp->is_object()) {
    FieldReader rr(*rp, (c.nested ? "text_config." : std::string()) + "rope_parameters.", path, &c.missing_fields);
    FORGE_RETURN_IF_ERROR(rr.Double("rope_theta", &g.rope_theta, false));
    FORGE_RETURN_IF_ERROR(rr.Double("partial_rotary_factor", &g.partial_rotary_factor, false));
  }
  if (g.rope_theta == 0) FORGE_RETURN_IF_ERROR(r.Double("rope_theta", &g.rope_theta, true));
  if (g.partial_rotary_factor == 0) FORGE_RETURN_IF_ERROR(r.Double("partial_rotary_factor", &g.partial_rotary_factor, false));

  const std::string prefix = c.nested ? "text_config." : "";
  if (auto lt = t.find("layer_types"); lt != t.end() && lt->is_array()) {
    if (lt->size() > (1u << 14)) return Status::Invalid("config field 'layer_types' has more entries than forge accepts", path);
    for (const auto& v : *lt) {
      if (!v.is_string()) return Status::Invalid("config field 'layer_types' must hold strings", path);
      const std::string type = v.get<std::string>();
      if (type != "linear_attention" && type != "full_attention") {
        return Status::Invalid(fmt::format("config field '{}layer_types' holds '{}' (Qwen3.5/3.6 layers are "
                                           "linear_attention or full_attention)", prefix, type),
                               path);
      }
      g.layer_types.push_back(type);
    }
  } else {
    int64_t interval = 0;
    FORGE_RETURN_IF_ERROR(r.Int("full_attention_interval", &interval, true));
    if (g.layers > (1 << 14)) {  // the derived list is sized by it: bounded before it is built
      return Status::Invalid(fmt::format("config field '{}num_hidden_layers' is {}, outside what forge accepts "
                                         "[1, 16384]", prefix, g.layers), path);
    }
    if (interval > 0) {
      g.layer_types_derived = true;
      for (int64_t i = 0; i < g.layers; ++i) {
        g.layer_types.push_back((i + 1) % interval == 0 ? "full_attention" : "linear_attention");
      }
    }
  }
  const bool has_linear = g.CountLayers("linear_attention") > 0 || g.layer_types.empty();
  FORGE_RETURN_IF_ERROR(r.Int("linear_num_key_heads", &g.linear_k_heads, has_linear));
  FORGE_RETURN_IF_ERROR(r.Int("linear_num_value_heads", &g.linear_v_heads, has_linear));
  FORGE_RETURN_IF_ERROR(r.Int("linear_key_head_dim", &g.linear_k_dim, has_linear));
  FORGE_RETURN_IF_ERROR(r.Int("linear_value_head_dim", &g.linear_v_dim, has_linear));
  FORGE_RETURN_IF_ERROR(r.Int("linear_conv_kernel_dim", &g.conv_kernel, has_linear));

  g.mtp_declared = t.contains("mtp_num_hidden_layers") && !t["mtp_num_hidden_layers"].is_null();
  FORGE_RETURN_IF_ERROR(r.Int("mtp_num_hidden_layers", &g.mtp_layers, false));
  FORGE_RETURN_IF_ERROR(r.Bool("mtp_use_dedicated_embeddings", &g.mtp_dedicated_embeddings));

  FORGE_RETURN_IF_ERROR(CheckBounds(g, prefix, path, has_linear, c.missing_fields));
  FORGE_ASSIGN_OR_RETURN(c.quant, ParseQuant(raw, t, path));
  return c;
}

Result<ModelConfig> LoadModelConfig(const std::string& path) {
  FORGE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  FORGE_ASSIGN_OR_RETURN(json raw, ParseJsonFileText(text, path, "config.json"));
  return ParseModelConfig(raw, path);
}

}  // namespace forge
