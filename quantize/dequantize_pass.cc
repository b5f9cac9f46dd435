#include "quantize/dequantize_pass.h"

#include <map>

#include <fmt/format.h>

#include "forge/ckpt/tensor_names.h"
#include "forge/plan/evaluate.h"
#include "forge/plan/evaluate_range.h"

namespace forge::quant {
namespace {

// Rows of the output from the matching rows of codes, scales and biases (each read over its range only),
// so `forge dequantize` and requantization stream a tensor of any size a few hundred KB at a time.
class DequantOp : public plan::CustomOp {
 public:
  explicit DequantOp(QuantParams p) : p_(p) {}
  std::string Describe() const override { return "dequantize_" + fmt::format("{}:{}:{}", QuantModeName(p_.mode), p_.bits, p_.group_size); }
  uint64_t RangeGranule(const plan::TensorMeta& out) const override { return out.shape.back(); }
  bool StreamsInputs() const override { return true; }
  Result<plan::Tensor> Run(const plan::Expr& self) const override {
    FORGE_ASSIGN_OR_RETURN(plan::Tensor out, RunRange(self, 0, self.meta.numel()));
    out.meta = self.meta;
    return out;
  }
  Result<plan::Tensor> RunRange(const plan::Expr& self, uint64_t begin, uint64_t end) const override {
    const uint64_t k = self.meta.shape.back(), r0 = begin / k, r1 = (end + k - 1) / k;  // whole rows
    std::vector<plan::Tensor> in;
    std::vector<plan::SourceSpan> read;
    for (const auto& input : self.inputs) {
      const uint64_t per_row = input->meta.shape.back();  // codes words, or scales / biases per row
      FORGE_ASSIGN_OR_RETURN(plan::Tensor t, plan::EvaluateRange(*input, r0 * per_row, r1 * per_row, &read));
      in.push_back(std::move(t));
    }
    plan::Tensor out = plan::Tensor::Allocate({self.meta.dtype, {end - begin}});
    DequantizeRows(p_, in[1].meta.dtype, in[0].data, in[1].data, in.size() > 2 ? in[2].data : nullptr, r1 - r0, k,
                   self.meta.dtype, out.mutable_data());
    plan::ReleaseSpans(read);
    return out;
  }

 private:
  QuantParams p_;
};

}  // namespace

Result<QuantParams> ParamsFromSpec(const QuantSpec& spec, const std::string& module) {
  auto mode = ParseQuantMode(spec.mode);
  if (!mode) return Status::Invalid(fmt::format("unknown quantization mode '{}'", spec.mode), "config.json", module);
  QuantParams p{*mode, spec.bits, spec.group_size};
  Status st = ValidateParams(p);
  if (!st.ok()) return Status::Invalid(st.message(), "config.json", module);
  return p;
}

Result<plan::Plan> DequantizePass(const plan::Plan& in, const QuantConfig& config, std::optional<DType> out) {
  std::map<std::string, plan::ExprPtr> by_name;
  for (const auto& t : in.tensors) by_name[t.name] = t.expr;
  plan::Plan result;
  for (const auto& t : in.tensors) {
    const bool companion = t.name.size() > 7 && (EndsWith(t.name, ".scales") || EndsWith(t.name, ".biases"));
    const std::string module = t.name.size() > 7 ? t.name.substr(0, t.name.size() - 7) : t.name;
    if (companion && by_name.count(module + ".weight") && by_name.count(module + ".scales")) continue;
    auto scales = by_name.find(module + ".scales");
    if (!EndsWith(t.name, ".weight") || scales == by_name.end()) {
      result.tensors.push_back(t);
      continue;
    }
    auto spec = config.For(module);
    if (!spec) return Status::Invalid("has .scales but config.json says it is not quantized", "config.json", module);
    FORGE_ASSIGN_OR_RETURN(QuantParams p, ParamsFromSpec(*spec, module));
    std::vector<plan::ExprPtr> inputs;
    inputs.reserve(3);
    inputs.push_back(t.expr);
    inputs.push_back(scales->second);
    if (HasBiases(p)) {
      auto biases = by_name.find(module + ".biases");
      if (biases == by_name.end()) return Status::Invalid("affine module without .biases", {}, module);
      inputs.push_back(biases->second);
    }
    plan::Shape shape = t.expr->meta.shape;
    if (t.expr->meta.dtype != DType::kU32 || shape.empty() || scales->second->meta.shape.back() * p.group_size !=
                                                                   shape.back() * 32 / static_cast<uint64_t>(p.bits)) {
      return Status::Invalid(fmt::format("packed weight {} and scales {} do not fit {}:{}:{}", plan::ShapeString(shape),
                                         plan::ShapeString(scales->second->meta.shape), spec->mode, p.bits, p.group_size),
                             {}, t.name);
    }
    shape.back() = shape.back() * 32 / static_cast<uint64_t>(p.bits);
    const DType dt = out.value_or(DefaultDequantDType(p, scales->second->meta.dtype));
    FORGE_ASSIGN_OR_RETURN(plan::ExprPtr e, plan::Custom(inputs, std::make_shared<DequantOp>(p), {dt, shape}));
    result.tensors.push_back({t.name, e});
  }
  return result;
}

}  // namespace forge::quant
