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

}  // namespace
}  // namespace forge::quant
