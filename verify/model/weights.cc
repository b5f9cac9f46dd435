#include "verify/model/weights.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "forge/base/float_access.h"
#include "forge/base/fs_util.h"
#include "forge/base/json_text.h"
#include "forge/ckpt/tensor_names.h"
#include "inspect/norm_evidence.h"

namespace forge::verify::model {
namespace {

Status Structural(const std::string& msg, const std::string& file = {}, const std::string& tensor = {}) {
  return Status::Error(ExitCode::kStructural, msg, file, tensor);
}

std::string ShapeText(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string Join(const std::string& base, const char* suffix) {
  return base.empty() ? suffix : base + "." + suffix;
}

// Resolves part-relative names ("layers.3.self_attn.q_proj.weight") to tensors, whatever the naming.
class Resolver {
 public:
  explicit Resolver(const Checkpoint& ckpt) : ckpt_(ckpt) {
    for (const auto& [name, ref] : ckpt.tensors()) {
      SplitName s = SplitTensorName(name);
      if (s.part == ModelPart::kLanguageModel || s.part == ModelPart::kLmHead || s.part == ModelPart::kMtp) {
        maps_[s.part][s.rel] = name;
        if (s.part == ModelPart::kLanguageModel && s.rel == "embed_tokens.weight") {
          format_ = s.style == NamingStyle::kMlx ? "mlx" : "hf";
        }
      }
    }
  }
  const std::string& format() const { return format_; }
  bool Has(ModelPart part, const std::string& rel) const { return !FullName(part, rel).empty(); }
  bool HasPart(ModelPart part) const {
    auto it = maps_.find(part);
    return it != maps_.end() && !it->second.empty();
  }
  std::string FullName(ModelPart part, const std::string& rel) const {
    auto it = maps_.find(part);
    if (it == maps_.end()) return {};
    auto jt = it->second.find(rel);
    return jt == it->second.end() ? std::string() : jt->second;
  }

  // A float vector of `n` elements.
  Result<std::vector<float>> Vector(ModelPart part, const std::string& rel, int64_t n) const {
    const std::string full = FullName(part, rel);
    if (full.empty())
      return Structural(fmt::format("missing tensor '{}' ({})", rel, ModelPartName(part)), ckpt_.dir());
    const TensorRef ref = *ckpt_.Find(full);
    if (!IsFloat(ref.info->dtype)) {
      return Structural(fmt::format("dtype {} where a float vector belongs (norms, A_log, dt_bias and conv "
                                    "taps are never quantized)",
                                    DTypeName(ref.info->dtype)),
                        ref.file->path(), full);
    }
    if (static_cast<int64_t>(ref.info->numel()) != n) {
      return Structural(fmt::format("shape {} has {} elements, config.json implies {}",
                                    ShapeText(ref.info->shape), ref.info->numel(), n),
                        ref.file->path(), full);
    }
    std::vector<float> v(static_cast<size_t>(n));
    const uint8_t* data = ref.file->Data(*ref.info);
    for (int64_t i = 0; i < n; ++i)
      v[static_cast<size_t>(i)] = LoadAsF32(ref.info->dtype, data, static_cast<uint64_t>(i));
    return v;
  }

  // A matrix [rows, cols] (or stacked [E, rows/E, cols]) at `base` + ".weight" (or `base` itself for fused
  // experts, which have no suffix), float or quantized (`base`.scales present).
  Result<Matrix> Mat(ModelPart part, const std::string& base, int64_t rows, int64_t cols) const {
    std::string full = FullName(part, Join(base, "weight"));
    if (full.empty() && !base.empty()) full = FullName(part, base);
    if (full.empty())
      return Structural(fmt::format("missing tensor '{}' ({})", Join(base, "weight"), ModelPartName(part)),
                        ckpt_.dir());
    const TensorRef ref = *ckpt_.Find(full);
    const auto& shape = ref.info->shape;
    uint64_t lead = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) lead *= shape[i];
    const uint64_t last = shape.empty() ? 0 : shape.back();
    const std::string scales_rel = Join(base, "scales");
    if (!Has(part, scales_rel)) {
      if (!IsFloat(ref.info->dtype)) {
        return Structural(fmt::format("dtype {} without a .scales companion", DTypeName(ref.info->dtype)),
                          ref.file->path(), full);
      }
      if (static_cast<int64_t>(lead) != rows || static_cast<int64_t>(last) != cols) {
        return Structural(
            fmt::format("shape {}, config.json implies {} rows x {} columns", ShapeText(shape), rows, cols),
            ref.file->path(), full);
      }
      return Matrix::Float(full, ref.info->dtype, ref.file->Data(*ref.info), rows, cols);
    }
    // MLX-quantized: parameters from the config's quantization block (per-module override first).
    const std::string module = EndsWith(full, ".weight") ? full.substr(0, full.size() - 7) : full;
    const auto& cfg = ckpt_.config();
    std::optional<QuantSpec> spec;
    if (cfg && cfg->quant) spec = cfg->quant->For(module);
    if (!spec)
      return Structural("has .scales but config.json has no quantization parameters for it", ref.file->path(),
                        full);
    auto mode = quant::ParseQuantMode(spec->mode);
    if (!mode)
      return Structural(fmt::format("unknown quantization mode '{}' in config.json", spec->mode),
                        ref.file->path(), full);
    Matrix::Quantized q;
    q.params = {*mode, spec->bits, spec->group_size};
    if (Status st = quant::ValidateParams(q.params); !st.ok())
      return Structural(st.message(), ref.file->path(), full);
    if (ref.info->dtype != DType::kU32 || static_cast<int64_t>(lead) != rows ||
        static_cast<int64_t>(last * 32) != cols * q.params.bits) {
      return Structural(fmt::format("packed shape {} {} does not hold {} x {} at {} bits",
                                    DTypeName(ref.info->dtype), ShapeText(shape), rows, cols, q.params.bits),
                        ref.file->path(), full);
    }
    const TensorRef sref = *ckpt_.Find(FullName(part, scales_rel));
    const uint64_t groups = static_cast<uint64_t>(cols / q.params.group_size);
    if (sref.info->numel() != static_cast<uint64_t>(rows) * groups ||
        sref.info->dtype != quant::ScalesDType(q.params, sref.info->dtype)) {
      return Structural(fmt::format("scales {} {} do not match {} rows x {} groups",
                                    DTypeName(sref.info->dtype), ShapeText(sref.info->shape), rows, groups),
                        sref.file->path(), sref.info->name);
    }
    q.scales_dtype = sref.info->dtype;
    q.scales = sref.file->Data(*sref.info);
    if (quant::HasBiases(q.params)) {
      const std::string bfull = FullName(part, Join(base, "biases"));
      if (bfull.empty()) return Structural("affine-quantized without .biases", ref.file->path(), full);
      const TensorRef bref = *ckpt_.Find(bfull);
      if (bref.info->numel() != sref.info->numel() || bref.info->dtype != sref.info->dtype) {
        return Structural("biases do not match scales", bref.file->path(), bfull);
      }
      q.biases = bref.file->Data(*bref.info);
    }
    return Matrix::Packed(full, ref.file->Data(*ref.info), q, rows, cols);
  }

 private:
  const Checkpoint& ckpt_;
  std::map<ModelPart, std::map<std::string, std::string>> maps_;
  std::string format_ = "hf";
};

// Gains as multipliers: 1 + w (zero-centered, computed in f32 like HF) or w (shifted, as stored).
void ToGain(std::vector<float>& w, bool zero_centered) {
  if (zero_centered)
    for (float& x : w) x = 1.0f + x;
}

struct NormGroups {
  bool trunk_zero = true, mtp_layers_zero = true, mtp_head_zero = true;
};

Result<NormGroups> DecideNorms(const Checkpoint& ckpt, const std::string& format, bool has_mtp,
                               std::vector<std::string>& notes) {
  const inspect::NormEvidence ev = inspect::DetectNormConvention(ckpt, format);
  auto decided = [&](inspect::NormConvention c, const char* group) -> Result<bool> {
    if (c == inspect::NormConvention::kZeroCentered) return true;
    if (c == inspect::NormConvention::kShifted) return false;
    return Structural(
        fmt::format(
            "RMSNorm convention of the {} is {}: the decoder cannot tell which gains carry the +1 ({})",
            group, inspect::NormConventionName(c), inspect::DescribeNormGroups(ev)),
        ckpt.dir());
  };
  NormGroups g;
  FORGE_ASSIGN_OR_RETURN(g.trunk_zero, decided(ev.trunk, "backbone"));
  if (has_mtp) {
    FORGE_ASSIGN_OR_RETURN(g.mtp_layers_zero, decided(ev.mtp_layers, "MTP layer norms"));
    FORGE_ASSIGN_OR_RETURN(g.mtp_head_zero, decided(ev.mtp_head, "MTP head norms"));
  }
  notes.push_back("norms: " + inspect::DescribeNormGroups(ev));
  return g;
}

Result<Geometry> GeometryOf(const Checkpoint& ckpt) {
  if (!ckpt.config()) return Structural("no config.json: the decoder needs the model geometry", ckpt.dir());
  const ModelConfig& cfg = *ckpt.config();
  if (!cfg.missing_fields.empty()) {
    std::string list;
    for (const auto& f : cfg.missing_fields) list += (list.empty() ? "" : ", ") + f;
    return Structural("config.json lacks " + list + " (never defaulted)", ckpt.dir() + "/config.json");
  }
  const TextGeometry& t = cfg.text;
  Geometry g;
  g.hidden = t.hidden, g.vocab = t.vocab, g.layers = t.layers, g.heads = t.heads, g.kv_heads = t.kv_heads;
  g.head_dim = t.head_dim, g.rope_theta = t.rope_theta, g.eps = t.rms_norm_eps;
  g.rope_dims = static_cast<int64_t>(static_cast<double>(t.head_dim) * t.partial_rotary_factor);
  g.k_heads = t.linear_k_heads, g.v_heads = t.linear_v_heads, g.k_dim = t.linear_k_dim,
  g.v_dim = t.linear_v_dim;
  g.conv_kernel = t.conv_kernel, g.experts = t.experts, g.experts_per_tok = t.experts_per_tok;
  const std::string where = ckpt.dir() + "/config.json";
  if (g.hidden <= 0 || g.vocab <= 0 || g.layers <= 0 || g.heads <= 0 || g.kv_heads <= 0 || g.head_dim <= 0 ||
      g.heads % g.kv_heads != 0 || g.eps <= 0 || g.rope_theta <= 0) {
    return Structural(
        "text geometry is incomplete or inconsistent (hidden, vocab, layers, heads, kv heads, head_dim, eps, "
        "rope_theta)",
        where);
  }
  if (g.rope_dims % 2 != 0 || g.rope_dims > g.head_dim)
    return Structural("head_dim x partial_rotary_factor must be even and <= head_dim", where);
  if (static_cast<int64_t>(t.layer_types.size()) != g.layers)
    return Structural("layer_types must have num_hidden_layers entries", where);
  if (t.CountLayers("linear_attention") > 0 &&
      (g.k_heads <= 0 || g.v_heads <= 0 || g.k_dim <= 0 || g.v_dim <= 0 || g.conv_kernel < 1 ||
       g.v_heads % g.k_heads != 0)) {
    return Structural("linear-attention geometry is incomplete (linear_* heads/dims, conv kernel)", where);
  }
  if (t.is_moe() && (g.experts_per_tok <= 0 || g.experts_per_tok > g.experts || t.moe_intermediate <= 0)) {
    return Structural("MoE geometry is incomplete (num_experts_per_tok, moe_intermediate_size)", where);
  }
  return g;
}

int64_t EosToken(const Checkpoint& ckpt) {
  auto first = [](const nlohmann::json& v) -> int64_t {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int64_t>();
    return -1;
  };
  auto text = ReadTextFile((std::filesystem::path(ckpt.dir()) / "generation_config.json").string());
  if (text.ok()) {
    auto j = ParseJsonText(*text);
    if (j.ok() && j->is_object() && j->contains("eos_token_id")) return first((*j)["eos_token_id"]);
  }
  const auto& cfg = *ckpt.config();
  if (cfg.text_json().contains("eos_token_id")) return first(cfg.text_json()["eos_token_id"]);
  if (cfg.raw.contains("eos_token_id")) return first(cfg.raw["eos_token_id"]);
  return -1;
}

struct LayerLoader {
  const Resolver& r;
  const Geometry& g;
  const TextGeometry& t;

  Result<MlpWeights> Mlp(ModelPart part, const std::string& p, int64_t width) const {
    MlpWeights m;
    FORGE_ASSIGN_OR_RETURN(m.gate, r.Mat(part, p + ".gate_proj", width, g.hidden));
    FORGE_ASSIGN_OR_RETURN(m.up, r.Mat(part, p + ".up_proj", width, g.hidden));
    FORGE_ASSIGN_OR_RETURN(m.down, r.Mat(part, p + ".down_proj", g.hidden, width));
    return m;
  }

  // Experts in whichever layout the checkpoint has: HF fused, HF per-expert, MLX switch_mlp.
  Result<std::vector<MlpWeights>> Experts(ModelPart part, const std::string& mlp) const {
    const int64_t E = g.experts, I = t.moe_intermediate, H = g.hidden;
    std::vector<MlpWeights> out(static_cast<size_t>(E));
    if (r.Has(part, mlp + ".experts.gate_up_proj")) {
      Matrix gu, down;
      FORGE_ASSIGN_OR_RETURN(gu, r.Mat(part, mlp + ".experts.gate_up_proj", E * 2 * I, H));
      FORGE_ASSIGN_OR_RETURN(down, r.Mat(part, mlp + ".experts.down_proj", E * H, I));
      for (int64_t e = 0; e < E; ++e) {  // gate rows first in each expert's 2I block (pitfall 7)
        out[e] = {gu.Slice(e * 2 * I, I), gu.Slice(e * 2 * I + I, I), down.Slice(e * H, H)};
      }
      return out;
    }
    if (r.Has(part, mlp + ".switch_mlp.gate_proj.weight")) {
      Matrix gate, up, down;
      FORGE_ASSIGN_OR_RETURN(gate, r.Mat(part, mlp + ".switch_mlp.gate_proj", E * I, H));
      FORGE_ASSIGN_OR_RETURN(up, r.Mat(part, mlp + ".switch_mlp.up_proj", E * I, H));
      FORGE_ASSIGN_OR_RETURN(down, r.Mat(part, mlp + ".switch_mlp.down_proj", E * H, I));
      for (int64_t e = 0; e < E; ++e)
        out[e] = {gate.Slice(e * I, I), up.Slice(e * I, I), down.Slice(e * H, H)};
      return out;
    }
    for (int64_t e = 0; e < E; ++e) {
      FORGE_ASSIGN_OR_RETURN(out[e], Mlp(part, fmt::format("{}.experts.{}", mlp, e), I));
    }
    return out;
  }

  Result<LayerWeights> Layer(ModelPart part, const std::string& p, bool full_attention,
                             bool zero_centered) const {
    LayerWeights L;
    L.full_attention = full_attention;
    const int64_t H = g.hidden;
    FORGE_ASSIGN_OR_RETURN(L.input_norm, r.Vector(part, p + ".input_layernorm.weight", H));
    FORGE_ASSIGN_OR_RETURN(L.post_norm, r.Vector(part, p + ".post_attention_layernorm.weight", H));
    ToGain(L.input_norm, zero_centered);
    ToGain(L.post_norm, zero_centered);
    if (full_attention) {
      const std::string a = p + ".self_attn";
      auto& W = L.attn;
      FORGE_ASSIGN_OR_RETURN(W.q, r.Mat(part, a + ".q_proj", 2 * g.heads * g.head_dim, H));
      FORGE_ASSIGN_OR_RETURN(W.k, r.Mat(part, a + ".k_proj", g.kv_heads * g.head_dim, H));
      FORGE_ASSIGN_OR_RETURN(W.v, r.Mat(part, a + ".v_proj", g.kv_heads * g.head_dim, H));
      FORGE_ASSIGN_OR_RETURN(W.o, r.Mat(part, a + ".o_proj", H, g.heads * g.head_dim));
      FORGE_ASSIGN_OR_RETURN(W.q_norm, r.Vector(part, a + ".q_norm.weight", g.head_dim));
      FORGE_ASSIGN_OR_RETURN(W.k_norm, r.Vector(part, a + ".k_norm.weight", g.head_dim));
      ToGain(W.q_norm, zero_centered);
      ToGain(W.k_norm, zero_centered);
    } else {
      const std::string a = p + ".linear_attn";
      auto& W = L.gdn;
      const int64_t C = g.conv_channels(), vd = g.v_heads * g.v_dim;
      FORGE_ASSIGN_OR_RETURN(W.qkv, r.Mat(part, a + ".in_proj_qkv", C, H));
      FORGE_ASSIGN_OR_RETURN(W.z, r.Mat(part, a + ".in_proj_z", vd, H));
      FORGE_ASSIGN_OR_RETURN(W.b, r.Mat(part, a + ".in_proj_b", g.v_heads, H));
      FORGE_ASSIGN_OR_RETURN(W.a, r.Mat(part, a + ".in_proj_a", g.v_heads, H));
      FORGE_ASSIGN_OR_RETURN(W.out, r.Mat(part, a + ".out_proj", H, vd));
      // [C,1,K] (HF) and [C,K,1] (MLX) hold the taps in the same flat order (spec §3.3).
      FORGE_ASSIGN_OR_RETURN(W.conv, r.Vector(part, a + ".conv1d.weight", C * g.conv_kernel));
      FORGE_ASSIGN_OR_RETURN(W.a_log, r.Vector(part, a + ".A_log", g.v_heads));
      FORGE_ASSIGN_OR_RETURN(W.dt_bias, r.Vector(part, a + ".dt_bias", g.v_heads));
      FORGE_ASSIGN_OR_RETURN(W.norm,
                             r.Vector(part, a + ".norm.weight", g.v_dim));  // plain weight, never shifted
    }
    const std::string m = p + ".mlp";
    L.moe = g.experts > 0;
    if (!L.moe) {
      FORGE_ASSIGN_OR_RETURN(L.mlp, Mlp(part, m, t.intermediate));
    } else {
      auto& W = L.moe_w;
      FORGE_ASSIGN_OR_RETURN(W.router, r.Mat(part, m + ".gate", g.experts, H));
      FORGE_ASSIGN_OR_RETURN(W.experts, Experts(part, m));
      FORGE_ASSIGN_OR_RETURN(W.shared, Mlp(part, m + ".shared_expert", t.shared_intermediate));
      FORGE_ASSIGN_OR_RETURN(W.shared_gate, r.Mat(part, m + ".shared_expert_gate", 1, H));
    }
    return L;
  }
};

}  // namespace

Result<ModelWeights> LoadModelWeights(const Checkpoint& ckpt) {
  ModelWeights w;
  FORGE_ASSIGN_OR_RETURN(w.geo, GeometryOf(ckpt));
  const Geometry& g = w.geo;
  const TextGeometry& t = ckpt.config()->text;
  if (!t.is_moe() && t.intermediate <= 0)
    return Structural("intermediate_size missing for a dense model", ckpt.dir() + "/config.json");
  Resolver r(ckpt);
  w.format = r.format();
  w.has_mtp = r.HasPart(ModelPart::kMtp);
  NormGroups norms;
  FORGE_ASSIGN_OR_RETURN(norms, DecideNorms(ckpt, w.format, w.has_mtp, w.notes));
  w.quantized = ckpt.HasQuantizedTensors();
  w.eos_token = EosToken(ckpt);

  const ModelPart lm = ModelPart::kLanguageModel;
  FORGE_ASSIGN_OR_RETURN(w.embed, r.Mat(lm, "embed_tokens", g.vocab, g.hidden));
  if (r.Has(ModelPart::kLmHead, "weight")) {  // shape-checked even when tied
    FORGE_ASSIGN_OR_RETURN(w.lm_head, r.Mat(ModelPart::kLmHead, "", g.vocab, g.hidden));
  } else if (!t.tie_word_embeddings) {
    return Structural("lm_head.weight missing and tie_word_embeddings is false", ckpt.dir());
  }
  // Tied: the head is the embedding, even where a stored lm_head.weight remains (loaders drop it, pitfall 26).
  if (t.tie_word_embeddings) w.lm_head = w.embed;
  FORGE_ASSIGN_OR_RETURN(w.final_norm, r.Vector(lm, "norm.weight", g.hidden));
  ToGain(w.final_norm, norms.trunk_zero);

  LayerLoader loader{r, g, t};
  for (int64_t i = 0; i < g.layers; ++i) {
    const bool full = t.layer_types[static_cast<size_t>(i)] == "full_attention";
    LayerWeights L;
    FORGE_ASSIGN_OR_RETURN(L, loader.Layer(lm, fmt::format("layers.{}", i), full, norms.trunk_zero));
    w.layers.push_back(std::move(L));
  }
  if (w.has_mtp) {
    const ModelPart mp = ModelPart::kMtp;
    auto& M = w.mtp;
    FORGE_ASSIGN_OR_RETURN(M.fc, r.Mat(mp, "fc", g.hidden, 2 * g.hidden));
    FORGE_ASSIGN_OR_RETURN(M.pre_fc_norm_embedding, r.Vector(mp, "pre_fc_norm_embedding.weight", g.hidden));
    FORGE_ASSIGN_OR_RETURN(M.pre_fc_norm_hidden, r.Vector(mp, "pre_fc_norm_hidden.weight", g.hidden));
    FORGE_ASSIGN_OR_RETURN(M.norm, r.Vector(mp, "norm.weight", g.hidden));
    ToGain(M.pre_fc_norm_embedding, norms.mtp_head_zero);
    ToGain(M.pre_fc_norm_hidden, norms.mtp_head_zero);
    ToGain(M.norm, norms.mtp_head_zero);
    const int64_t n_layers = t.mtp_layers > 0 ? t.mtp_layers : 1;
    for (int64_t i = 0; i < n_layers; ++i) {  // the MTP layer is always gated full attention (spec §2.6)
      LayerWeights L;
      FORGE_ASSIGN_OR_RETURN(L, loader.Layer(mp, fmt::format("layers.{}", i), true, norms.mtp_layers_zero));
      M.layers.push_back(std::move(L));
    }
  }
  if (w.quantized) w.notes.push_back("MLX-quantized weights are dequantized one row at a time (f32)");
  return w;
}

}  // namespace forge::verify::model
