#include "quantize/quantize_pass.h"

#include <cmath>
#include <mutex>

#include <fmt/format.h>

#include "forge/base/float_access.h"
#include "forge/ckpt/tensor_names.h"
#include "forge/plan/evaluate.h"

namespace forge::quant {
namespace {

// The shared computation behind a module's two or three output tensors.
class ModuleJob {
 public:
  ModuleJob(std::string name, plan::ExprPtr input, QuantParams p, Rules rules, std::shared_ptr<FidelityCollector> fid)
      : name_(std::move(name)), input_(std::move(input)), p_(p), rules_(rules), fidelity_(std::move(fid)) {}

  int parts() const { return HasBiases(p_) ? 3 : 2; }
  const plan::ExprPtr& input() const { return input_; }
  const QuantParams& params() const { return p_; }

  plan::TensorMeta PartMeta(int part) const {
    plan::Shape s = input_->meta.shape;
    const uint64_t k = s.back();
    if (part == 0) {
      s.back() = k * static_cast<uint64_t>(p_.bits) / 32;
      return {DType::kU32, s};
    }
    s.back() = k / static_cast<uint64_t>(p_.group_size);
    return {ScalesDType(p_, input_->meta.dtype), s};
  }

  Result<plan::Tensor> Take(int part) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!computed_) {
      Status st = Compute();
      if (!st.ok()) return st;
      computed_ = true;
    }
    plan::Tensor out = parts_[part];
    if (++taken_ == parts()) {
      for (auto& t : parts_) t = plan::Tensor();  // every part handed out: free them
    }
    return out;
  }

 private:
  Status Compute() {
    FORGE_ASSIGN_OR_RETURN(plan::Tensor in, plan::Evaluate(*input_));
    const DType dt = in.meta.dtype;
    const uint64_t n = in.meta.numel(), k = in.meta.shape.back(), rows = n / k;
    for (uint64_t i = 0; i < n; ++i) {
      if (!std::isfinite(LoadAsF32(dt, in.data, i))) {
        return Status::Invalid(fmt::format("element {} is {}: refusing to quantize (MLX would silently produce garbage)",
                                           i, LoadAsF32(dt, in.data, i)),
                               {}, name_);
      }
    }
    for (int part = 0; part < parts(); ++part) parts_[part] = plan::Tensor::Allocate(PartMeta(part));
    QuantizeRows(p_, rules_, dt, in.data, rows, k, parts_[0].mutable_data(), parts_[1].mutable_data(),
                 parts() == 3 ? parts_[2].mutable_data() : nullptr);
    if (fidelity_) MeasureFidelity(in, rows, k);
    return Status();
  }

  // Row blocks of about a million elements, so that measuring never needs two f32 copies of a big tensor.
  void MeasureFidelity(const plan::Tensor& in, uint64_t rows, uint64_t k) {
    const DType sdt = ScalesDType(p_, in.meta.dtype);
    const uint64_t block_rows = std::max<uint64_t>(1, (1u << 20) / k);
    const uint64_t groups = k / static_cast<uint64_t>(p_.group_size);
    const uint64_t packed_row = k * static_cast<uint64_t>(p_.bits) / 8, scale_bytes = static_cast<uint64_t>(DTypeBits(sdt)) / 8;
    std::vector<float> orig, recon;
    FidelityAccumulator acc;
    for (uint64_t r0 = 0; r0 < rows; r0 += block_rows) {
      const uint64_t nr = std::min(block_rows, rows - r0), m = nr * k;
      orig.resize(m);
      recon.resize(m);
      for (uint64_t i = 0; i < m; ++i) orig[i] = LoadAsF32(in.meta.dtype, in.data, r0 * k + i);
      DequantizeRows(p_, sdt, parts_[0].data + r0 * packed_row, parts_[1].data + r0 * groups * scale_bytes,
                     parts() == 3 ? parts_[2].data + r0 * groups * scale_bytes : nullptr, nr, k, DType::kF32,
                     reinterpret_cast<uint8_t*>(recon.data()));
      acc.Add(orig.data(), recon.data(), m);
    }
    Fidelity f = acc.Result();
    for (int part = 0; part < parts(); ++part) f.quantized_bytes += parts_[part].meta.nbytes();
    f.params = ParamsString(p_);
    fidelity_->Add(name_, f);
  }

  std::string name_;
  plan::ExprPtr input_;
  QuantParams p_;
  Rules rules_;
  std::shared_ptr<FidelityCollector> fidelity_;
  std::mutex mu_;
  bool computed_ = false;
  int taken_ = 0;
  plan::Tensor parts_[3];
};

class QuantPartOp : public plan::CustomOp {
 public:
  QuantPartOp(std::shared_ptr<ModuleJob> job, int part) : job_(std::move(job)), part_(part) {}
  std::string Describe() const override {
    static constexpr const char* kPart[] = {"codes", "scales", "biases"};
    return fmt::format("quantize_{}[{}]", ParamsString(job_->params()), kPart[part_]);
  }
  Result<plan::Tensor> Run(const plan::Expr& /*self*/) const override { return job_->Take(part_); }
  uint64_t ScratchBytes(const plan::TensorMeta& /*out*/) const override {
    // The input materialized once, plus the module's other parts (fidelity works in row blocks).
    uint64_t n = job_->input()->meta.nbytes() + (8ull << 20);
    for (int p = 0; p < job_->parts(); ++p) n += job_->PartMeta(p).nbytes();
    return n;
  }

 private:
  std::shared_ptr<ModuleJob> job_;
  int part_;
};

}  // namespace

Result<QuantizePassResult> QuantizePass(const plan::Plan& in, const QuantPolicy& policy, Rules rules,
                                        std::shared_ptr<FidelityCollector> fidelity) {
  QuantizePassResult r;
  FORGE_RETURN_IF_ERROR(ValidateParams(policy.top));
  for (const auto& t : in.tensors) {
    const Decision d = Decide(t.name, t.expr->meta.shape, t.expr->meta.dtype, policy);
    if (!d.quantize) {
      if (t.expr->meta.shape.size() >= 2 && t.name.size() > 7 && EndsWith(t.name, ".weight")) {
        r.kept[t.name] = d.reason;
      }
      r.plan.tensors.push_back(t);
      continue;
    }
    const std::string module = t.name.substr(0, t.name.size() - 7);
    auto job = std::make_shared<ModuleJob>(t.name, t.expr, d.params, rules, fidelity);
    static constexpr const char* kSuffix[] = {".weight", ".scales", ".biases"};
    for (int part = 0; part < job->parts(); ++part) {
      FORGE_ASSIGN_OR_RETURN(plan::ExprPtr e,
                             plan::Custom({t.expr}, std::make_shared<QuantPartOp>(job, part), job->PartMeta(part)));
      r.plan.tensors.push_back({module + kSuffix[part], e});
    }
    r.quantized[module] = d.params;
  }
  return r;
}

}  // namespace forge::quant
