#include "quantize/fidelity.h"

#include "forge/base/simd16.h"

#include <atomic>
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

// The sums are defined lane by lane: lane j (0..7) takes elements j, j + 8, j + 16, ... of each block, and
// the eight lanes are combined in a fixed order at the end (one dependent chain of double adds ran ~4x slower
// than the codec). Every build computes exactly that, W doubles per vector and 8 / W vectors per quantity,
// with lane-wise IEEE operations only (no contraction: -ffp-contract=off), so every width gives the same
// bits. The accumulators are locals the compiler keeps in registers: through a pointer to a struct of 64-byte
// vectors GCC 12 spilled them on every element outside AVX-512 (41 % of `quantize --json` on AVX2).
struct LaneSums {
  double dot[8] = {}, na[8] = {}, nb[8] = {}, sum_abs[8] = {}, max_abs[8] = {};
};

template <int W>
struct Vectors;  // W doubles, W floats, W 64-bit integers per vector (GCC 12 takes no dependent vector_size)
#define FORGE_FIDELITY_VECTORS(W)                                 \
  template <>                                                     \
  struct Vectors<W> {                                             \
    typedef double D __attribute__((vector_size(8 * W)));         \
    typedef float F __attribute__((vector_size(4 * W)));          \
    typedef uint64_t U __attribute__((vector_size(8 * W)));       \
  };
FORGE_FIDELITY_VECTORS(2)
FORGE_FIDELITY_VECTORS(4)
FORGE_FIDELITY_VECTORS(8)
#undef FORGE_FIDELITY_VECTORS

template <int W>
FORGE_INLINE void AddLanes(const float* a, const float* b, uint64_t n, LaneSums* out) {
  using D = typename Vectors<W>::D;
  using F = typename Vectors<W>::F;
  using U = typename Vectors<W>::U;
  constexpr int kParts = 8 / W;
  D dot[kParts] = {}, na[kParts] = {}, nb[kParts] = {}, sum_abs[kParts] = {}, max_abs[kParts] = {};
  const U magnitude = U{} + static_cast<uint64_t>(INT64_MAX);  // every bit but the sign: d & magnitude is |d|
  const U inf_bits = U{} + 0x7ff0000000000000u;
  for (uint64_t i = 0; i + 8 <= n; i += 8) {
    for (int p = 0; p < kParts; ++p) {
      F fa, fb;
      std::memcpy(&fa, a + i + p * W, sizeof fa);
      std::memcpy(&fb, b + i + p * W, sizeof fb);
      const D x = __builtin_convertvector(fa, D), y = __builtin_convertvector(fb, D);
      const D e = (D)((U)(x - y) & magnitude);
      dot[p] += x * y;
      na[p] += x * x;
      nb[p] += y * y;
      sum_abs[p] += e;
      // max = e > max ? e : max from integer arithmetic on the bits: GCC 12 compiles a double vector
      // comparison wider than the target as scalar ones. Both are >= +0 (sign cleared), where float order
      // is the bits' order; a NaN e (bits above infinity's) never wins, as the comparison says.
      const U eb = (U)e, mb = (U)max_abs[p];
      const U take = (U{} - ((mb - eb) >> 63)) & ~(U{} - ((inf_bits - eb) >> 63));
      max_abs[p] = (D)((eb & take) | (mb & ~take));
    }
  }
  for (int p = 0; p < kParts; ++p) {
    std::memcpy(out->dot + p * W, &dot[p], sizeof dot[p]);
    std::memcpy(out->na + p * W, &na[p], sizeof na[p]);
    std::memcpy(out->nb + p * W, &nb[p], sizeof nb[p]);
    std::memcpy(out->sum_abs + p * W, &sum_abs[p], sizeof sum_abs[p]);
    std::memcpy(out->max_abs + p * W, &max_abs[p], sizeof max_abs[p]);
  }
}

using AddLanesFn = void (*)(const float*, const float*, uint64_t, LaneSums*);

void AddLanes2(const float* a, const float* b, uint64_t n, LaneSums* s) { AddLanes<2>(a, b, n, s); }
#if defined(__x86_64__)
__attribute__((target("avx2"))) void AddLanes4(const float* a, const float* b, uint64_t n, LaneSums* s) {
  AddLanes<4>(a, b, n, s);
}
__attribute__((target("avx512f"))) void AddLanes8(const float* a, const float* b, uint64_t n, LaneSums* s) {
  AddLanes<8>(a, b, n, s);
}
#endif

// The build for `lanes` doubles per vector (0: the widest this CPU runs), nullptr where the CPU cannot run it.
AddLanesFn AddLanesFor(int lanes) {
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  if (lanes == 0) lanes = avx512 ? 8 : avx2 ? 4 : 2;
  if (lanes == 8) return avx512 ? AddLanes8 : nullptr;
  if (lanes == 4) return avx2 ? AddLanes4 : nullptr;
#else
  if (lanes == 0) lanes = 2;
#endif
  return lanes == 2 ? AddLanes2 : nullptr;
}

std::atomic<AddLanesFn> g_add_lanes{nullptr};

}  // namespace

bool SetFidelityLanes(int lanes) {
  const AddLanesFn fn = AddLanesFor(lanes);
  if (fn != nullptr) g_add_lanes.store(fn);
  return fn != nullptr;
}

void FidelityAccumulator::Add(const float* a, const float* b, uint64_t n) {
  AddLanesFn add = g_add_lanes.load(std::memory_order_relaxed);
  if (add == nullptr) {  // first call: resolve the CPU's width once
    add = AddLanesFor(0);
    g_add_lanes.store(add);
  }
  LaneSums s;
  add(a, b, n, &s);
  double* dot = s.dot;
  double* na = s.na;
  double* nb = s.nb;
  double* sum_abs = s.sum_abs;
  double* max_abs = s.max_abs;
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
