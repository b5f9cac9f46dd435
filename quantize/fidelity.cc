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

Fidelity Compare(const float* a, const float* b, uint64_t n) {
  double dot = 0, na = 0, nb = 0, sum_abs = 0, max_abs = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const double x = a[i], y = b[i], e = std::fabs(x - y);
    dot += x * y;
    na += x * x;
    nb += y * y;
    sum_abs += e;
    if (e > max_abs) max_abs = e;
  }
  Fidelity f;
  f.elements = n;
  f.cosine = na == 0 && nb == 0 ? 1.0 : (na == 0 || nb == 0 ? 0.0 : dot / std::sqrt(na * nb));
  f.max_abs_error = max_abs;
  f.mean_abs_error = n ? sum_abs / static_cast<double>(n) : 0.0;
  return f;
}

}  // namespace forge::quant
