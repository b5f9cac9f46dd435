#include "quantize/fidelity.h"

#include <cmath>

namespace forge::quant {

void FidelityCollector::Add(const std::string& name, const Fidelity& f) {
  std::lock_guard<std::mutex> lock(mu_);
  by_tensor_[name] = f;
}

std::map<std::string, Fidelity> FidelityCollector::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_tensor_;
}

void FidelityAccumulator::Add(const float* a, const float* b, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) {
    const double x = a[i], y = b[i], e = std::fabs(x - y);
    dot_ += x * y;
    na_ += x * x;
    nb_ += y * y;
    sum_abs_ += e;
    if (e > max_abs_) max_abs_ = e;
  }
  n_ += n;
}

void FidelityAccumulator::Merge(const FidelityAccumulator& o) {
  dot_ += o.dot_;
  na_ += o.na_;
  nb_ += o.nb_;
  sum_abs_ += o.sum_abs_;
  if (o.max_abs_ > max_abs_) max_abs_ = o.max_abs_;
  n_ += o.n_;
}

Fidelity FidelityAccumulator::Result() const {
  Fidelity f;
  f.elements = n_;
  f.cosine = na_ == 0 && nb_ == 0 ? 1.0 : (na_ == 0 || nb_ == 0 ? 0.0 : dot_ / std::sqrt(na_ * nb_));
  f.max_abs_error = max_abs_;
  f.mean_abs_error = n_ ? sum_abs_ / static_cast<double>(n_) : 0.0;
  return f;
}

Fidelity Compare(const float* a, const float* b, uint64_t n) {
  FidelityAccumulator acc;
  acc.Add(a, b, n);
  return acc.Result();
}

}  // namespace forge::quant
