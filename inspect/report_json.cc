#include "inspect/report_json.h"

namespace forge::inspect {

using json = nlohmann::json;

json ReportToJson(const Report& r) {
  const TextGeometry& g = r.geometry;
  json j;
  j["path"] = r.path;
  j["format"] = r.format;
  j["format_evidence"] = r.format_evidence;
  j["model_type"] = r.model_type;
  j["text_model_type"] = r.text_model_type;
  j["architecture"] = r.architecture;
  j["has_config"] = r.has_config;
  if (r.has_config) {
    j["geometry"] = {
        {"hidden_size", g.hidden}, {"num_hidden_layers", g.layers},
        {"layer_types", {{"linear_attention", g.CountLayers("linear_attention")},
                         {"full_attention", g.CountLayers("full_attention")},
                         {"derived_from_interval", r.layer_types_derived}}},
        {"num_attention_heads", g.heads}, {"num_key_value_heads", g.kv_heads}, {"head_dim", g.head_dim},
        {"linear_num_key_heads", g.linear_k_heads}, {"linear_num_value_heads", g.linear_v_heads},
        {"linear_key_head_dim", g.linear_k_dim}, {"linear_value_head_dim", g.linear_v_dim},
        {"linear_conv_kernel_dim", g.conv_kernel}, {"intermediate_size", g.intermediate},
        {"num_experts", g.experts}, {"num_experts_per_tok", g.experts_per_tok},
        {"moe_intermediate_size", g.moe_intermediate}, {"shared_expert_intermediate_size", g.shared_intermediate},
        {"vocab_size", g.vocab}, {"tie_word_embeddings", g.tie_word_embeddings}, {"rope_theta", g.rope_theta},
        {"partial_rotary_factor", g.partial_rotary_factor}, {"rms_norm_eps", g.rms_norm_eps}};
  }
  j["vision"] = {{"present", r.vision_tensors > 0}, {"tensors", r.vision_tensors}, {"config", r.vision_config}};
  j["expert_layout"] = {{"backbone", ExpertLayoutName(r.backbone_layout)}, {"mtp", ExpertLayoutName(r.mtp_layout)}};
  j["norm_convention"] = NormConventionName(r.norms.overall);
  j["norm_detail"] = {{"backbone", NormConventionName(r.norms.trunk)},
                      {"mtp", NormConventionName(r.norms.mtp)},
                      {"mtp_layer_norms", NormConventionName(r.norms.mtp_layers)},
                      {"mtp_head_norms", NormConventionName(r.norms.mtp_head)},
                      {"evidence", r.norms.evidence}};
  json q;
  q["quantized"] = r.quant.quantized();
  q["config_key"] = r.quant.source_key;
  if (r.quant.top) {
    q["mode"] = r.quant.top->mode;
    q["bits"] = r.quant.top->bits;
    q["group_size"] = r.quant.top->group_size;
  }
  if (!r.quant.legacy_method.empty()) q["quant_method"] = r.quant.legacy_method;
  q["overrides"] = r.quant.overrides;
  q["ignored_keys"] = r.quant.ignored_keys;
  q["quantized_modules"] = r.quant.quantized_modules;
  q["quantized_by_part"] = r.quant.quantized_by_part;
  j["quantization"] = q;
  j["mtp"] = {{"status", MtpStatusName(r.mtp.status)}, {"declared_layers", r.mtp.declared_layers},
              {"declared_key_present", r.mtp.declared_key_present}, {"tensors", r.mtp.tensors},
              {"layers_present", r.mtp.layers_present}, {"missing", r.mtp.missing}, {"fix", r.mtp.fix}};
  nlohmann::json runtimes = nlohmann::json::array();
  for (const auto& rt : r.layout.runtimes)
    runtimes.push_back({{"runtime", rt.runtime}, {"loads", rt.loads}, {"mtp", rt.mtp}, {"why", rt.why}});
  j["layout"] = {{"name", r.layout.name}, {"evidence", r.layout.evidence}, {"runtimes", runtimes},
                 {"warnings", r.layout.warnings}};
  j["tensor_count"] = r.tensor_count;
  j["total_bytes"] = r.total_bytes;
  j["bytes_by_dtype"] = r.bytes_by_dtype;
  j["shards"] = r.shards;
  j["indexed"] = r.indexed;
  j["aux_files"] = r.aux_files;
  j["problems"] = r.problems;
  j["warnings"] = r.warnings;
  j["verdict"] = r.verdict;
  j["fix"] = r.fix;
  j["exit_code"] = static_cast<int>(r.exit_code);
  return j;
}

json TensorTableToJson(const std::vector<TensorRow>& rows) {
  json arr = json::array();
  for (const auto& row : rows) {
    json e = {{"name", row.name}, {"dtype", row.dtype}, {"shape", row.shape}, {"bytes", row.bytes}, {"shard", row.shard}};
    if (!row.quant.empty()) e["quantization"] = row.quant;
    arr.push_back(std::move(e));
  }
  return arr;
}

}  // namespace forge::inspect
