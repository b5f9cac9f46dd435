// The fidelity accumulator's largest error against a plain loop over |a - b| in double: the vector lanes
// take their maximum from integer arithmetic on the bits, which must give what `e > max ? e : max` gives,
// for every magnitude from zero to infinity and with NaN differences (which a comparison never picks).
#include "quantize/fidelity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace forge::quant {
namespace {

double PlainMaxAbs(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    m = e > m ? e : m;
  }
  return m;
}

TEST(Fidelity, LargestErrorEqualsAPlainLoop) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-140, 120);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int round = 0; round < 200; ++round) {
    const size_t n = 8 + rng() % 300;
    std::vector<float> a(n), b(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = std::ldexp(normal(rng), exponent(rng));
      b[i] = rng() % 4 == 0 ? a[i] : std::ldexp(normal(rng), exponent(rng));
    }
    if (round % 3 == 0) b[rng() % n] = nan;  // a NaN difference never becomes the maximum
    if (round % 5 == 0) b[rng() % n] = inf;  // an infinite one does
    if (round % 7 == 0) std::fill(b.begin(), b.end(), 0.0f), a = b;  // all zero: +0
    const Fidelity f = Compare(a.data(), b.data(), n);
    EXPECT_EQ(f.max_abs_error, PlainMaxAbs(a, b)) << "round " << round;
  }
}

// The sums as defined (lane j takes elements j, j + 8, ...; lanes combined in order), plainly in double.
Fidelity PlainLanes(const std::vector<float>& a, const std::vector<float>& b) {
  double dot[8] = {}, na[8] = {}, nb[8] = {}, sum_abs[8] = {};
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i];
    dot[i % 8] += x * y;
    na[i % 8] += x * x;
    nb[i % 8] += y * y;
    sum_abs[i % 8] += std::fabs(x - y);
  }
  double d = 0, sa = 0, sb = 0, s = 0;
  for (int j = 0; j < 8; ++j) d += dot[j], sa += na[j], sb += nb[j], s += sum_abs[j];
  Fidelity f;
  f.cosine = d / std::sqrt(sa * sb);
  f.mean_abs_error = s / static_cast<double>(a.size());
  f.max_abs_error = PlainMaxAbs(a, b);
  return f;
}

// Every vector width this CPU runs gives the plain lane loop's bits (the --report JSON must not depend on
// the machine); a width the CPU lacks is refused, not faked.
TEST(Fidelity, EveryVectorWidthGivesThePlainLaneSums) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  int widths_run = 0;
  for (int lanes : {2, 4, 8}) {
    if (!SetFidelityLanes(lanes)) continue;
    ++widths_run;
    for (int round = 0; round < 50; ++round) {
      const size_t n = 1 + rng() % 500;
      std::vector<float> a(n), b(n);
      for (size_t i = 0; i < n; ++i) a[i] = normal(rng), b[i] = a[i] + 0.01f * normal(rng);
      const Fidelity got = Compare(a.data(), b.data(), n), want = PlainLanes(a, b);
      EXPECT_EQ(got.cosine, want.cosine) << lanes << " lanes, n " << n;
      EXPECT_EQ(got.mean_abs_error, want.mean_abs_error) << lanes << " lanes, n " << n;
      EXPECT_EQ(got.max_abs_error, want.max_abs_error) << lanes << " lanes, n " << n;
    }
  }
  SetFidelityLanes(0);
  EXPECT_GE(widths_run, 1);
  EXPECT_FALSE(SetFidelityLanes(3));
}

}  // namespace
}  // namespace forge::quant
