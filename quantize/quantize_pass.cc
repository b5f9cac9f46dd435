#include "quantize/quantize_pass.h"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <numeric>

#include <fmt/format.h>

#include "forge/base/float_access.h"
#include "forge/ckpt/tensor_names.h"
#include "forge/plan/evaluate.h"
#include "forge/plan/evaluate_range.h"

namespace forge::quant {
namespace {

// Input bytes one thread quantizes at a time: small enough that a module's threads share big tensors
// evenly and memory stays a few chunks per thread, large enough that per-chunk work is negligible.
constexpr uint64_t kChunkInputBytes = 16ull << 20;

// Index of the first NaN or infinity among n elements, or n. 16-bit inputs are tested on the exponent bits,
// a block at a time without early exit so that the compiler vectorizes the test.
uint64_t FirstNonFinite(DType dt, const uint8_t* p, uint64_t n) {
  if (dt == DType::kBF16 || dt == DType::kF16) {
    const uint16_t exp = dt == DType::kBF16 ? 0x7F80 : 0x7C00;
    constexpr uint64_t kBlock = 256;
    uint16_t block[kBlock];
    for (uint64_t b = 0; b < n; b += kBlock) {
      const uint64_t m = std::min(kBlock, n - b);
      std::memcpy(block, p + 2 * b, 2 * m);
      bool bad = false;
      for (uint64_t i = 0; i < m; ++i) bad |= (block[i] & exp) == exp;
      if (!bad) continue;
      for (uint64_t i = 0; i < m; ++i) {
        if ((block[i] & exp) == exp) return b + i;
      }
    }
    return n;
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (!std::isfinite(LoadAsF32(dt, p, i))) return i;
  }
  return n;
}

// The shared computation behind a module's two or three output tensors. The writer asks for each part
// on its own thread; every thread that asks while the module is being computed helps: the input is read
// in row chunks (plan::EvaluateRange, never materialized whole), chunks are claimed from a counter, and
// the parts are handed out once the last chunk is done. Errors and fidelity sums are kept per chunk and
// combined in chunk order, so the result does not depend on which thread did what.
class ModuleJob {
 public:
  ModuleJob(std::string name, plan::ExprPtr input, QuantParams p, Rules rules, std::shared_ptr<FidelityCollector> fid)
      : name_(std::move(name)), input_(std::move(input)), p_(p), rules_(rules), fidelity_(std::move(fid)) {}

  int parts() const { return HasBiases(p_) ? 3 : 2; }
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
  // What a thread holds while helping: a chunk of input, its float32 copy and reconstruction for fidelity.
  static uint64_t WorkingBytes() { return 3 * kChunkInputBytes; }

  Result<plan::Tensor> Take(int part) {
    Help();
    std::lock_guard<std::mutex> lock(mu_);
    if (!status_.ok()) return status_;
    return std::move(parts_[part]);  // each part is asked for once: it lives on only in the writer's hands
  }

 private:
  struct Chunk {
    uint64_t row_begin, row_end;
    Status status;
    FidelityAccumulator fidelity;
  };

  void Help() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (chunks_.empty()) SetUp();
    }
    for (size_t c = next_.fetch_add(1); c < chunks_.size(); c = next_.fetch_add(1)) {
      RunChunk(&chunks_[c]);
      std::lock_guard<std::mutex> lock(mu_);
      if (++done_ == chunks_.size()) {
        Finish();
        cv_.notify_all();
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_ == chunks_.size(); });
  }

  // Under mu_: the outputs and the row chunks (whole multiples of the input's split granule).
  void SetUp() {
    const plan::TensorMeta& m = input_->meta;
    k_ = m.shape.back();
    const uint64_t rows = m.numel() / k_, granule = plan::SplitGranule(*input_);
    for (int part = 0; part < parts(); ++part) parts_[part] = plan::Tensor::Allocate(PartMeta(part));
    const uint64_t row_bytes = k_ * DTypeBits(m.dtype) / 8;
    const uint64_t row_granule = granule == 0 ? rows : std::lcm(granule, k_) / k_;
    for (const auto& [b, e] : plan::SplitRanges(rows, std::max<uint64_t>(1, row_granule),
                                                std::max<uint64_t>(1, kChunkInputBytes / row_bytes))) {
      chunks_.push_back({b, e, Status(), FidelityAccumulator()});
    }
  }

  void RunChunk(Chunk* c) {
    std::vector<plan::SourceSpan> read;
    c->status = QuantizeChunk(c, &read);
    plan::ReleaseSpans(read);  // on every path: the chunk's source pages are done with
  }

  Status QuantizeChunk(Chunk* c, std::vector<plan::SourceSpan>* read) {
    const DType dt = input_->meta.dtype;
    const uint64_t rows = c->row_end - c->row_begin, n = rows * k_;
    FORGE_ASSIGN_OR_RETURN(plan::Tensor in, plan::EvaluateRange(*input_, c->row_begin * k_, c->row_end * k_, read));
    const uint64_t bad = FirstNonFinite(dt, in.data, n);
    if (bad < n) {
      // Named by the source file it was read from (the tensor by its output name, which the plan carries).
      const std::string file = read->empty() || read->front().file == nullptr ? "" : read->front().file->path();
      return Status::Invalid(fmt::format("element {} is {}: refusing to quantize (MLX would silently produce garbage)",
                                         c->row_begin * k_ + bad, LoadAsF32(dt, in.data, bad)),
                             file, name_);
    }
    const DType sdt = ScalesDType(p_, dt);
    const uint64_t groups = k_ / static_cast<uint64_t>(p_.group_size), scale_bytes = DTypeBits(sdt) / 8;
    const uint64_t packed_row = k_ * static_cast<uint64_t>(p_.bits) / 8, r0 = c->row_begin;
    uint8_t* packed = parts_[0].mutable_data() + r0 * packed_row;
    uint8_t* scales = parts_[1].mutable_data() + r0 * groups * scale_bytes;
    uint8_t* biases = parts() == 3 ? parts_[2].mutable_data() + r0 * groups * scale_bytes : nullptr;
    QuantizeRows(p_, rules_, dt, in.data, rows, k_, packed, scales, biases);
    if (fidelity_) {
      std::vector<float> orig(n), recon(n);
      for (uint64_t i = 0; i < n; ++i) orig[i] = LoadAsF32(dt, in.data, i);
      DequantizeRows(p_, sdt, packed, scales, biases, rows, k_, DType::kF32, reinterpret_cast<uint8_t*>(recon.data()));
      c->fidelity.Add(orig.data(), recon.data(), n);
    }
    return Status();
  }

  // Under mu_, once: the first error in chunk order, or the fidelity of the whole tensor.
  void Finish() {
    FidelityAccumulator all;
    for (const Chunk& c : chunks_) {
      if (!c.status.ok()) {
        status_ = c.status;
        return;
      }
      all.Merge(c.fidelity);
    }
    if (!fidelity_) return;
    Fidelity f = all.Result();
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
  std::condition_variable cv_;
  uint64_t k_ = 0;
  std::vector<Chunk> chunks_;  // fixed once set up; each chunk written by the one thread that claimed it
  std::atomic<size_t> next_{0};
  size_t done_ = 0;
  Status status_;
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
  bool StreamsInputs() const override { return true; }
  const void* SharedComputation() const override { return job_.get(); }
  uint64_t ScratchBytes(const plan::TensorMeta& /*out*/) const override { return ModuleJob::WorkingBytes(); }

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
