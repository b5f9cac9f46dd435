#include "quantize/quantize_pass.h"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <numeric>

#include <fmt/format.h>

#include "forge/base/float_access.h"
#include "forge/base/simd16.h"
#include "forge/ckpt/tensor_names.h"
#include "forge/plan/evaluate.h"
#include "forge/plan/evaluate_range.h"

namespace forge::quant {
namespace {

// Index of the first NaN or infinity among n elements, or n. 16-bit inputs are tested on the exponent bits,
// a block at a time without early exit so that the compiler vectorizes the test.
FORGE_HOT uint64_t FirstNonFinite(DType dt, const uint8_t* p, uint64_t n) {
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

// Bytes of codes one block produces: the writer asks for the codes a block at a time and writes each while
// it is in the core's cache (plan::CustomOp::RangeGranule); its input is 4 (4-bit) to 8 (2-bit) times that.
constexpr uint64_t kBlockCodeBytes = 256u << 10;

// The original values as float32 for the fidelity sums, on the widest vectors the CPU has.
FORGE_HOT void WidenForFidelity(DType dt, const uint8_t* p, uint64_t n, float* out) {
  simd::WidenToF32(dt, p, static_cast<int64_t>(n), out);
}

// The shared computation behind a module's two or three output tensors. The codes are computed a block
// of rows at a time, on whichever writer thread asks for that range; each block also fills its rows of the
// scales and biases (kept whole: 1/8 to 1/4 of the codes) and its fidelity sums, once. The scales and
// biases are handed out when every block is done: the thread that asks for them computes the blocks no
// one has claimed and waits for the rest. Errors and fidelity sums are combined in block order, so the
// result does not depend on which thread did what.
class ModuleJob {
 public:
  ModuleJob(std::string name, plan::ExprPtr input, QuantParams p, Rules rules, std::shared_ptr<FidelityCollector> fid)
      : name_(std::move(name)), input_(std::move(input)), p_(p), rules_(rules), fidelity_(std::move(fid)) {
    const plan::TensorMeta& m = input_->meta;
    k_ = m.shape.back();
    rows_ = m.numel() / k_;
    packed_row_ = k_ * static_cast<uint64_t>(p_.bits) / 8;
    const uint64_t granule = plan::SplitGranule(*input_);
    const uint64_t row_granule = granule == 0 ? std::max<uint64_t>(1, rows_) : std::lcm(granule, k_) / k_;
    block_rows_ = std::max<uint64_t>(1, kBlockCodeBytes / std::max<uint64_t>(1, packed_row_) / row_granule) * row_granule;
    const uint64_t blocks = rows_ == 0 ? 0 : (rows_ + block_rows_ - 1) / block_rows_;
    state_ = std::vector<std::atomic<uint8_t>>(blocks);
    if (fidelity_) block_fidelity_.resize(blocks);
  }

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
  // What a thread holds while computing a block: its input, codes and float32 copies for fidelity.
  uint64_t WorkingBytes() const { return block_rows_ * (k_ * 12 + packed_row_); }
  // Elements of the codes part per block (the codes split by blocks; scales and biases only whole).
  uint64_t CodesGranule() const { return block_rows_ * packed_row_ / 4; }

  // Codes elements [begin, end), whole blocks (or up to the end).
  Result<plan::Tensor> Codes(uint64_t begin, uint64_t end) {
    plan::Tensor out = plan::Tensor::Allocate({DType::kU32, {end - begin}});
    const uint64_t per_block = CodesGranule();  // begin is a multiple of it (plan::EvaluateRange sees to that)
    for (uint64_t at = begin; at < end; at += per_block) {
      FORGE_RETURN_IF_ERROR(ComputeBlock(at / per_block, out.mutable_data() + (at - begin) * 4));
    }
    return out;
  }

  // The scales (part 1) or biases (part 2), once every block is done.
  Result<plan::Tensor> Whole(int part) {
    for (size_t b = 0; b < state_.size(); ++b) {
      if (state_[b].load() == kUnclaimed) FORGE_RETURN_IF_ERROR(ComputeBlock(b, nullptr));
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !status_.ok() || recorded_ == state_.size(); });
    if (!status_.ok()) return status_;
    if (!finished_) Finish();
    if (part_taken_[part]) return Status::Invalid("quantized part requested twice", {}, name_);
    part_taken_[part] = true;
    AllocateWholeParts();  // a module without rows computed no block
    return std::move(parts_[part]);  // it lives on only in the writer's hands
  }

 private:
  static constexpr uint8_t kUnclaimed = 0, kClaimed = 1, kRecorded = 2;

  // The scales and biases buffers, once, on first need (a plan holds every module's job: allocating in
  // the constructor would hold the whole model's scales at once).
  void AllocateWholeParts() {
    std::call_once(parts_allocated_, [&] {
      for (int part = 1; part < parts(); ++part) parts_[part] = plan::Tensor::Allocate(PartMeta(part));
    });
  }

  // Block b's codes into `codes` (null: discarded). The first to claim the block also records its scales,
  // biases and fidelity; a later request (a sampled range, say) recomputes the same codes.
  Status ComputeBlock(size_t b, uint8_t* codes) {
    AllocateWholeParts();
    uint8_t expected = kUnclaimed;
    const bool record = state_[b].compare_exchange_strong(expected, kClaimed);
    Status st = RunBlock(b, codes, record);
    if (!record) return st;
    std::lock_guard<std::mutex> lock(mu_);
    if (!st.ok()) {
      if (status_.ok() || b < failed_block_) status_ = st, failed_block_ = b;
    } else {
      state_[b].store(kRecorded);
      ++recorded_;
    }
    cv_.notify_all();
    return st;
  }

  Status RunBlock(size_t b, uint8_t* codes_out, bool record) {
    const uint64_t r0 = b * block_rows_, rows = std::min(block_rows_, rows_ - r0);
    std::vector<plan::SourceSpan> read;
    Result<plan::Tensor> in = plan::EvaluateRange(*input_, r0 * k_, (r0 + rows) * k_, &read);
    Status st = in.ok() ? QuantizeBlock(*in, r0, rows, codes_out, record) : in.status();
    plan::ReleaseSpans(read);  // on every path: the block's source pages are done with
    if (!st.ok() && !read.empty() && st.file().empty() && read.front().file != nullptr) {
      // Named by the source file it was read from (the tensor by its output name, which the plan carries).
      return Status::Invalid(st.message(), read.front().file->path(), name_);
    }
    return st;
  }

  Status QuantizeBlock(const plan::Tensor& in, uint64_t r0, uint64_t rows, uint8_t* codes_out, bool record) {
    const DType dt = input_->meta.dtype, sdt = ScalesDType(p_, dt);
    const uint64_t n = rows * k_, bad = FirstNonFinite(dt, in.data, n);
    if (bad < n) {
      return Status::Invalid(fmt::format("element {} is {}: refusing to quantize (MLX would silently produce garbage)",
                                         r0 * k_ + bad, LoadAsF32(dt, in.data, bad)),
                             "", name_);
    }
    const uint64_t groups = k_ / static_cast<uint64_t>(p_.group_size), scale_bytes = DTypeBits(sdt) / 8;
    thread_local std::vector<uint8_t> codes_scratch, scales_scratch, biases_scratch;
    uint8_t* codes = codes_out;
    if (codes == nullptr) {
      codes_scratch.resize(rows * packed_row_);
      codes = codes_scratch.data();
    }
    uint8_t *scales, *biases = nullptr;
    if (record) {
      scales = parts_[1].mutable_data() + r0 * groups * scale_bytes;
      if (parts() == 3) biases = parts_[2].mutable_data() + r0 * groups * scale_bytes;
    } else {
      scales_scratch.resize(rows * groups * scale_bytes);
      scales = scales_scratch.data();
      if (parts() == 3) {
        biases_scratch.resize(rows * groups * scale_bytes);
        biases = biases_scratch.data();
      }
    }
    QuantizeRows(p_, rules_, dt, in.data, rows, k_, codes, scales, biases);
    if (record && fidelity_) {
      thread_local std::vector<float> orig, recon;
      orig.resize(n);
      recon.resize(n);
      WidenForFidelity(dt, in.data, n, orig.data());
      DequantizeRows(p_, sdt, codes, scales, biases, rows, k_, DType::kF32, reinterpret_cast<uint8_t*>(recon.data()));
      block_fidelity_[r0 / block_rows_].Add(orig.data(), recon.data(), n);
    }
    return Status();
  }

  // Under mu_, once every block is recorded: the fidelity of the whole tensor, blocks merged in order.
  void Finish() {
    finished_ = true;
    if (!fidelity_) return;
    FidelityAccumulator all;
    for (const FidelityAccumulator& f : block_fidelity_) all.Merge(f);
    Fidelity f = all.Result();
    for (int part = 0; part < parts(); ++part) f.quantized_bytes += PartMeta(part).nbytes();
    f.params = ParamsString(p_);
    fidelity_->Add(name_, f);
  }

  std::string name_;
  plan::ExprPtr input_;
  QuantParams p_;
  Rules rules_;
  std::shared_ptr<FidelityCollector> fidelity_;
  uint64_t k_ = 0, rows_ = 0, packed_row_ = 0, block_rows_ = 1;
  std::vector<std::atomic<uint8_t>> state_;      // per block: unclaimed, claimed, recorded
  std::vector<FidelityAccumulator> block_fidelity_;  // per block, written by the thread that recorded it
  std::once_flag parts_allocated_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t recorded_ = 0, failed_block_ = 0;
  bool finished_ = false, part_taken_[3] = {false, false, false};
  Status status_;  // the first failure among recorded blocks, by block
  plan::Tensor parts_[3];  // [1] scales, [2] biases; the codes are never held whole
};

class QuantPartOp : public plan::CustomOp {
 public:
  QuantPartOp(std::shared_ptr<ModuleJob> job, int part) : job_(std::move(job)), part_(part) {}
  std::string Describe() const override {
    static constexpr const char* kPart[] = {"codes", "scales", "biases"};
    return fmt::format("quantize_{}[{}]", ParamsString(job_->params()), kPart[part_]);
  }
  Result<plan::Tensor> Run(const plan::Expr& self) const override {
    return part_ == 0 ? job_->Codes(0, self.meta.numel()) : job_->Whole(part_);
  }
  uint64_t RangeGranule(const plan::TensorMeta& /*out*/) const override { return part_ == 0 ? job_->CodesGranule() : 0; }
  Result<plan::Tensor> RunRange(const plan::Expr& /*self*/, uint64_t begin, uint64_t end) const override {
    return job_->Codes(begin, end);
  }
  bool StreamsInputs() const override { return true; }
  const void* SharedComputation() const override { return job_.get(); }
  uint64_t ScratchBytes(const plan::TensorMeta& /*out*/) const override { return job_->WorkingBytes(); }

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
