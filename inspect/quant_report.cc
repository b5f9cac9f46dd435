#include "inspect/quant_report.h"

#include <fmt/format.h>

#include "forge/ckpt/tensor_names.h"

namespace forge::inspect {

std::string QuantSpecString(const QuantSpec& q) { return fmt::format("{}:{}:{}", q.mode, q.bits, q.group_size); }

std::optional<QuantSpec> QuantReport::SpecOf(const std::string& module) const {
  auto it = module_specs_.find(module);
  if (it == module_specs_.end()) return std::nullopt;
  return it->second;
}

std::vector<uint64_t> LogicalWeightShape(const st::TensorInfo& weight, const std::optional<QuantSpec>& spec) {
  std::vector<uint64_t> s = weight.shape;
  if (spec && spec->bits > 0 && !s.empty() && weight.dtype == DType::kU32) s.back() = s.back() * 32 / spec->bits;
  return s;
}

QuantReport BuildQuantReport(const Checkpoint& ckpt) {
  QuantReport r;
  const QuantConfig* qc = nullptr;
  if (ckpt.config() && ckpt.config()->quant) {
    qc = &*ckpt.config()->quant;
    r.config_present = true;
    r.source_key = qc->source_key;
    r.top = qc->top;
    r.legacy_method = qc->legacy_method;
    r.ignored_keys = qc->ignored_keys;
    for (const auto& [path, spec] : qc->overrides) r.overrides[path] = spec ? QuantSpecString(*spec) : "false";
  }
  const auto& tensors = ckpt.tensors();
  for (const auto& [name, ref] : tensors) {
    if (EndsWith(name, ".scales")) {
      const std::string module = name.substr(0, name.size() - 7);
      auto w = tensors.find(module + ".weight");
      if (w == tensors.end()) {
        r.problems.push_back(fmt::format("{} has no matching {}.weight", name, module));
        continue;
      }
      r.quantized_modules.push_back(module);
      r.quantized_by_part[std::string(ModelPartName(SplitTensorName(name).part))] += 1;
      std::optional<QuantSpec> spec = qc ? qc->For(module) : std::nullopt;
      if (!qc) {
        r.problems.push_back(fmt::format("{} is quantized but config.json has no 'quantization' block", module));
        continue;
      }
      if (!spec) {
        r.problems.push_back(fmt::format("{} has .scales but its config entry says false (not quantized)", module));
        continue;
      }
      r.module_specs_[module] = *spec;
      const auto& wi = *w->second.info;
      const auto& si = *ref.info;
      const bool affine = spec->mode == "affine";
      const bool has_biases = tensors.count(module + ".biases") > 0;
      if (wi.dtype != DType::kU32) r.problems.push_back(fmt::format("{}.weight is {} but quantized weights are U32", module, DTypeName(wi.dtype)));
      if (affine != has_biases) {
        r.problems.push_back(fmt::format("{} is {} but {} .biases", module, QuantSpecString(*spec), has_biases ? "has" : "lacks"));
      }
      if (spec->bits > 0 && spec->group_size > 0 && !wi.shape.empty() && si.shape.size() == wi.shape.size()) {
        uint64_t in = wi.shape.back() * 32 / spec->bits;
        if (wi.shape.back() * 32 % spec->bits != 0 || si.shape.back() * spec->group_size != in) {
          r.problems.push_back(fmt::format("{}: scales {} do not fit weight {} at {}", module, si.shape.back(),
                                           wi.shape.back(), QuantSpecString(*spec)));
        }
      }
    } else if (EndsWith(name, ".weight") && ref.info->dtype == DType::kU32 &&
               tensors.count(name.substr(0, name.size() - 7) + ".scales") == 0) {
      r.problems.push_back(fmt::format("{} is U32 (packed) but has no .scales", name));
    }
  }
  return r;
}

}  // namespace forge::inspect
