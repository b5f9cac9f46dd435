#include "inspect/report_text.h"

#include <fmt/format.h>

namespace forge::inspect {
namespace {

std::string Human(uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) { v /= 1000; ++u; }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

}  // namespace

std::string ReportToText(const Report& r) {
  std::string o;
  auto line = [&](std::string_view key, const std::string& value) { o += fmt::format("{:<18}{}\n", key, value); };
  line("checkpoint", r.path);
  line("format", fmt::format("{} ({})", r.format, fmt::join(r.format_evidence, "; ")));
  if (r.has_config) {
    const TextGeometry& g = r.geometry;
    line("architecture", fmt::format("{} (model_type {}, text {})", r.architecture.empty() ? "?" : r.architecture,
                                     r.model_type.empty() ? "?" : r.model_type, r.text_model_type.empty() ? "?" : r.text_model_type));
    line("text", fmt::format("hidden {}, {} layers ({} linear_attention + {} full_attention{}), vocab {}, tied {}", g.hidden,
                             g.layers, g.CountLayers("linear_attention"), g.CountLayers("full_attention"),
                             r.layer_types_derived ? ", from full_attention_interval" : "", g.vocab,
                             g.tie_word_embeddings ? "yes" : "no"));
    line("attention", fmt::format("{} heads / {} kv heads, head_dim {}, rope theta {:g}, partial {:g}", g.heads, g.kv_heads,
                                  g.head_dim, g.rope_theta, g.partial_rotary_factor));
    line("gated deltanet", fmt::format("{} k heads x {}, {} v heads x {}, conv kernel {}", g.linear_k_heads, g.linear_k_dim,
                                       g.linear_v_heads, g.linear_v_dim, g.conv_kernel));
    if (g.is_moe()) {
      line("moe", fmt::format("{} experts, top-{}, expert width {}, shared width {}", g.experts, g.experts_per_tok,
                              g.moe_intermediate, g.shared_intermediate));
    } else {
      line("mlp", fmt::format("dense, width {}", g.intermediate));
    }
  }
  line("vision tower", r.vision_tensors ? fmt::format("present ({} tensors)", r.vision_tensors)
                                        : (r.vision_config ? "config only, no tensors" : "absent"));
  line("experts", fmt::format("backbone {}, mtp {}", ExpertLayoutName(r.backbone_layout), ExpertLayoutName(r.mtp_layout)));
  line("norms", r.norms.has_mtp_norms()
                    ? fmt::format("{} (backbone {}, mtp layer norms {}, mtp head norms {})", NormConventionName(r.norms.overall),
                                  NormConventionName(r.norms.trunk), NormConventionName(r.norms.mtp_layers),
                                  NormConventionName(r.norms.mtp_head))
                    : fmt::format("{} (backbone; no MTP norms)", NormConventionName(r.norms.overall)));
  for (const auto& e : r.norms.evidence) line("", "- " + e);
  if (r.quant.quantized() || r.quant.config_present) {
    std::string q = r.quant.top ? QuantSpecString(*r.quant.top) : (r.quant.legacy_method.empty() ? "?" : r.quant.legacy_method);
    std::string parts;
    for (const auto& [p, n] : r.quant.quantized_by_part) parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", n, p);
    line("quantization", fmt::format("{} (mode:bits:group), {} quantized modules ({}), {} overrides", q,
                                     r.quant.quantized_modules.size(), parts, r.quant.overrides.size()));
    for (const auto& [path, spec] : r.quant.overrides) line("", fmt::format("- {} = {}", path, spec));
  } else {
    line("quantization", "none (float)");
  }
  std::string mtp = fmt::format("{} (declared {}{}, {} tensors, {} layer(s))", MtpStatusName(r.mtp.status),
                                r.mtp.declared_layers, r.mtp.declared_key_present ? "" : " [key absent]", r.mtp.tensors,
                                r.mtp.layers_present);
  line("mtp", mtp);
  for (size_t i = 0; i < r.mtp.missing.size() && i < 20; ++i) line("", "- missing " + r.mtp.missing[i]);
  if (r.mtp.missing.size() > 20) line("", fmt::format("- ... {} more (see --json)", r.mtp.missing.size() - 20));
  line("layout", fmt::format("{} ({})", r.layout.name, fmt::join(r.layout.evidence, "; ")));
  for (const auto& rt : r.layout.runtimes) {
    line("", fmt::format("- {}: {} ({})", rt.runtime, rt.mtp ? "loads with MTP" : rt.loads ? "loads, no MTP" : "does not load",
                         rt.why));
  }
  std::string dtypes;
  for (const auto& [d, b] : r.bytes_by_dtype) dtypes += fmt::format("{}{} {}", dtypes.empty() ? "" : ", ", d, Human(b));
  line("tensors", fmt::format("{} in {} file(s){}, {} ({})", r.tensor_count, r.shards, r.indexed ? " + index" : "",
                              Human(r.total_bytes), dtypes));
  if (!r.aux_files.empty()) line("other files", fmt::format("{}", fmt::join(r.aux_files, ", ")));
  for (size_t i = 0; i < r.problems.size() && i < 30; ++i) line(i == 0 ? "problems" : "", "- " + r.problems[i]);
  if (r.problems.size() > 30) line("", fmt::format("- ... {} more (see --json)", r.problems.size() - 30));
  for (size_t i = 0; i < r.warnings.size() && i < 10; ++i) line(i == 0 ? "warnings" : "", "- " + r.warnings[i]);
  if (r.warnings.size() > 10) line("", fmt::format("- ... {} more (see --json)", r.warnings.size() - 10));
  line("verdict", r.verdict);
  if (!r.fix.empty()) line("fix", r.fix);
  return o;
}

std::string TensorTableToText(const std::vector<TensorRow>& rows) {
  size_t w = 4;
  for (const auto& r : rows) w = std::max(w, r.name.size());
  std::string o = fmt::format("{:<{}}  {:<7} {:<22} {:>12}  {:<36} {}\n", "name", w, "dtype", "shape", "bytes", "shard", "quant");
  for (const auto& r : rows) {
    o += fmt::format("{:<{}}  {:<7} {:<22} {:>12}  {:<36} {}\n", r.name, w, r.dtype, fmt::format("[{}]", fmt::join(r.shape, ", ")),
                     r.bytes, r.shard, r.quant);
  }
  return o;
}

}  // namespace forge::inspect
