// MLX quantization of a checkpoint (spec §6): the config's `quantization` block and per-module overrides,
// which modules carry `.scales`, and whether config and tensors agree.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "forge/ckpt/checkpoint.h"

namespace forge::inspect {

struct QuantReport {
  bool config_present = false;
  std::string source_key;
  std::optional<QuantSpec> top;
  std::string legacy_method;
  std::map<std::string, std::string> overrides;  // module path -> "affine:8:64" or "false"
  std::vector<std::string> ignored_keys;
  std::vector<std::string> quantized_modules;    // modules (full names without .weight) that have .scales
  std::map<std::string, int> quantized_by_part;  // language_model / lm_head / mtp / vision
  std::vector<std::string> problems;             // config and tensors disagree
  bool quantized() const { return !quantized_modules.empty(); }
  // Parameters of a quantized module, or nullopt for float modules.
  std::optional<QuantSpec> SpecOf(const std::string& module) const;

  std::map<std::string, QuantSpec> module_specs_;  // filled by BuildQuantReport
};

std::string QuantSpecString(const QuantSpec& q);  // "affine:4:64"
QuantReport BuildQuantReport(const Checkpoint& ckpt);

// The unquantized shape of `<module>.weight` (packed last dim expanded), or the stored shape.
std::vector<uint64_t> LogicalWeightShape(const st::TensorInfo& weight, const std::optional<QuantSpec>& spec);

}  // namespace forge::inspect
