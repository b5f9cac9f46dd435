#include "quantize/fidelity.h"

#include "forge/base/simd16.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace forge::quant {

void FidelityCollector::Add(const std::string& name, const Fidelity& f) {
  std::lock_guard<std::mutex> lock(mu_);
  by_tensor_[name] = f;
}

std::map<std::string, Fidelity> FidelityCollector::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_tensor_;
}

namespace {

typedef double D8 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));
typedef int64_t L8 __attribute__((vector_size(64)));
typedef uint64_t U8 __attribute__((vector_size(64)));

struct LaneSums {
  D8 dot = {}, na = {}, nb = {}, sum_abs = {}, max_abs = {};
};

// Eight independent sums per quantity, lane j taking elements j, j + 8, ... (one dependent chain of double
// adds ran ~4x slower than the codec). Lane-wise IEEE operations only (no contraction: -ffp-contract=off),
// so every clone gives the same sums.
FORGE_INLINE void AddLanes(const float* a, const float* b, uint64_t n, LaneSums* s) {
  const L8 magnitude = L8{} + INT64_MAX;  // every bit but the sign: d & magnitude is |d|
  for (uint64_t i = 0; i + 8 <= n; i += 8) {
    F8 fa, fb;
    std::memcpy(&fa, a + i, sizeof fa);
    std::memcpy(&fb, b + i, sizeof fb);
    const D8 x = __builtin_convertvector(fa, D8), y = __builtin_convertvector(fb, D8);
    const D8 d = x - y;
    const D8 e = (D8)((L8)d & magnitude);
    s->dot += x * y;
    s->na += x * x;
    s->nb += y * y;
    s->sum_abs += e;
    // max_abs = e > max_abs ? e : max_abs, from integer arithmetic on the bits: GCC 12 compiles an 8-lane
    // double comparison outside AVX-512 as eight scalar ones. Both are >= +0 (sign cleared), where float
    // order is the bits' order; a NaN e (bits above infinity's) never wins, as the comparison says.
    const U8 eb = (U8)e, mb = (U8)s->max_abs;
    const U8 greater = U8{} - ((mb - eb) >> 63);
    const U8 nan = U8{} - ((U8{} + 0x7ff0000000000000u - eb) >> 63);
    const U8 take = greater & ~nan;
    s->max_abs = (D8)((eb & take) | (mb & ~take));
  }
}

FORGE_HOT void AddVectorized(const float* a, const float* b, uint64_t n, LaneSums* s) { AddLanes(a, b, n, s); }

}  // namespace

void FidelityAccumulator::Add(const float* a, const float* b, uint64_t n) {
  LaneSums s;
  AddVectorized(a, b, n, &s);
  double dot[8], na[8], nb[8], sum_abs[8], max_abs[8];
  std::memcpy(dot, &s.dot, sizeof dot);
  std::memcpy(na, &s.na, sizeof na);
  std::memcpy(nb, &s.nb, sizeof nb);
  std::memcpy(sum_abs, &s.sum_abs, sizeof sum_abs);
  std::memcpy(max_abs, &s.max_abs, sizeof max_abs);
  for (uint64_t i = n / 8 * 8, j = 0; i < n; ++i, ++j) {  // the tail, lane by lane
    const double x = a[i], y = b[i], e = std::fabs(x - y);
    dot[j] += x * y;
    na[j] += x * x;
    nb[j] += y * y;
    sum_abs[j] += e;
    max_abs[j] = e > max_abs[j] ? e : max_abs[j];
  }
  for (int j = 0; j < 8; ++j) {  // lanes combined in a fixed order: the result depends only on the inputs
    dot_ += dot[j];
    na_ += na[j];
    nb_ += nb[j];
    sum_abs_ += sum_abs[j];
    if (max_abs[j] > max_abs_) max_abs_ = max_abs[j];
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
