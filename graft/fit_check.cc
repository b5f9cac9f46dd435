#include "graft/fit_check.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "forge/base/float_access.h"
#include "forge/base/fs_util.h"
#include "forge/ckpt/tensor_names.h"
#include "forge/plan/evaluate.h"
#include "forge/plan/evaluate_range.h"

namespace forge::graft {
namespace {

constexpr int kMatrixSamples = 32;        // matrices compared for the lineage statistics
constexpr uint64_t kRowsPerSample = 32;   // rows of each sampled matrix

void CompareGeometry(const TextGeometry& a, const TextGeometry& b, std::vector<std::string>* out) {
  auto cmp = [&](const char* name, auto x, auto y) {
    if (x != y) out->push_back(fmt::format("text geometry differs: {} is {} in SRC but {} in BASE", name, x, y));
  };
  cmp("hidden_size", a.hidden, b.hidden);
  cmp("num_hidden_layers", a.layers, b.layers);
  cmp("num_attention_heads", a.heads, b.heads);
  cmp("num_key_value_heads", a.kv_heads, b.kv_heads);
  cmp("head_dim", a.head_dim, b.head_dim);
  cmp("vocab_size", a.vocab, b.vocab);
  cmp("linear_num_key_heads", a.linear_k_heads, b.linear_k_heads);
  cmp("linear_num_value_heads", a.linear_v_heads, b.linear_v_heads);
  cmp("linear_key_head_dim", a.linear_k_dim, b.linear_k_dim);
  cmp("linear_value_head_dim", a.linear_v_dim, b.linear_v_dim);
  cmp("linear_conv_kernel_dim", a.conv_kernel, b.conv_kernel);
  cmp("intermediate_size", a.intermediate, b.intermediate);
  cmp("num_experts", a.experts, b.experts);
  cmp("num_experts_per_tok", a.experts_per_tok, b.experts_per_tok);
  cmp("moe_intermediate_size", a.moe_intermediate, b.moe_intermediate);
  cmp("shared_expert_intermediate_size", a.shared_intermediate, b.shared_intermediate);
  cmp("rms_norm_eps", a.rms_norm_eps, b.rms_norm_eps);
  cmp("rope_theta", a.rope_theta, b.rope_theta);
  cmp("partial_rotary_factor", a.partial_rotary_factor, b.partial_rotary_factor);
  cmp("tie_word_embeddings", a.tie_word_embeddings, b.tie_word_embeddings);
  if (a.layer_types != b.layer_types) out->push_back("text geometry differs: layer_types");
  if (a.is_moe() != b.is_moe()) out->push_back(fmt::format("SRC is {} but BASE is {}", a.is_moe() ? "MoE" : "dense", b.is_moe() ? "MoE" : "dense"));
}

bool IsTrunk(const std::string& name) {
  ModelPart p = SplitTensorName(name).part;
  return p == ModelPart::kLanguageModel || p == ModelPart::kLmHead;
}

// Relative L2 difference of two float tensors of equal shape (their first rows for big matrices: the first
// kRowsPerSample rows of the last axis, so a stacked-expert tensor costs rows, not experts).
Result<double> RelativeDifference(const plan::ExprPtr& a, const plan::ExprPtr& b) {
  uint64_t n = a->meta.numel();
  if (a->meta.shape.size() >= 2) n = std::min(n, kRowsPerSample * a->meta.shape.back());
  std::vector<plan::SourceSpan> read;
  FORGE_ASSIGN_OR_RETURN(plan::Tensor ta, plan::EvaluateRange(*a, 0, n, &read));
  FORGE_ASSIGN_OR_RETURN(plan::Tensor tb, plan::EvaluateRange(*b, 0, n, &read));
  double diff = 0, norm = 0;
  for (uint64_t i = 0; i < ta.meta.numel(); ++i) {
    const double x = LoadAsF32(ta.meta.dtype, ta.data, i), y = LoadAsF32(tb.meta.dtype, tb.data, i);
    diff += (x - y) * (x - y);
    norm += y * y;
  }
  plan::ReleaseSpans(read);  // samples of a whole checkpoint: keep only the one in hand resident
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
}

}  // namespace

FitReport CheckFit(const Checkpoint& src, const plan::Plan& src_view, const Checkpoint& base, const plan::Plan& base_view) {
  FitReport r;
  CompareGeometry(src.config()->text, base.config()->text, &r.refusals);

  const std::string ts = (std::filesystem::path(src.dir()) / "tokenizer.json").string();
  const std::string tb = (std::filesystem::path(base.dir()) / "tokenizer.json").string();
  if (std::filesystem::exists(ts) && std::filesystem::exists(tb)) {
    auto a = ReadTextFile(ts, 1ull << 30), b = ReadTextFile(tb, 1ull << 30);
    if (!a.ok() || !b.ok() || *a != *b) r.refusals.push_back("tokenizer.json differs between SRC and BASE (not byte-identical)");
    else r.notes.push_back("tokenizer.json byte-identical");
  } else {
    r.notes.push_back("tokenizer.json not present in both: not compared");
  }

  std::map<std::string, plan::ExprPtr> a, b;
  for (const auto& t : src_view.tensors) if (IsTrunk(t.name)) a[t.name] = t.expr;
  for (const auto& t : base_view.tensors) if (IsTrunk(t.name)) b[t.name] = t.expr;
  std::vector<std::string> common;
  for (const auto& [name, e] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      r.refusals.push_back(fmt::format("trunk tensor {} is in SRC but not in BASE", name));
    } else if (it->second->meta.shape != e->meta.shape) {
      r.refusals.push_back(fmt::format("trunk tensor {} is {} in SRC but {} in BASE", name, plan::ShapeString(e->meta.shape),
                                       plan::ShapeString(it->second->meta.shape)));
    } else {
      common.push_back(name);
    }
  }
  for (const auto& [name, e] : b) {
    if (!a.count(name)) r.refusals.push_back(fmt::format("trunk tensor {} is in BASE but not in SRC", name));
  }

  // Lineage statistics on a bounded, deterministic sample: every 1-D tensor, kMatrixSamples matrices.
  LineageStats& L = r.lineage;
  L.common = static_cast<int>(common.size());
  std::vector<std::string> matrices;
  std::vector<std::pair<std::string, double>> diffs;
  for (const auto& n : common) {
    if (a[n]->meta.shape.size() == 1) {
      auto d = RelativeDifference(a[n], b[n]);
      if (d.ok()) diffs.emplace_back(n, *d);
    } else {
      matrices.push_back(n);
    }
  }
  const size_t step = std::max<size_t>(1, matrices.size() / kMatrixSamples);
  for (size_t i = 0; i < matrices.size(); i += step) {
    auto d = RelativeDifference(a[matrices[i]], b[matrices[i]]);
    if (d.ok()) diffs.emplace_back(matrices[i], *d);
  }
  L.sampled = static_cast<int>(diffs.size());
  if (!diffs.empty()) {
    std::vector<double> v;
    for (const auto& [n, d] : diffs) v.push_back(d);
    std::sort(v.begin(), v.end());
    L.median_relative_l2 = v[v.size() / 2];
    L.max_relative_l2 = v.back();
    std::sort(diffs.begin(), diffs.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
    diffs.resize(std::min<size_t>(diffs.size(), 5));
    L.largest = diffs;
    L.verdict = L.median_relative_l2 == 0    ? "identical trunks"
                : L.median_relative_l2 < 0.1 ? "consistent with a fine-tune of BASE"
                : L.median_relative_l2 < 0.5 ? "differs substantially from BASE (heavy fine-tune?)"
                                             : "looks unrelated to BASE";
  }
  return r;
}

}  // namespace forge::graft
