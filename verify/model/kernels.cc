#include "verify/model/kernels.h"

#include <cmath>

#include <algorithm>

namespace forge::verify::model {

double Dot(const float* a, const float* b, int64_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(a[i + j]) * static_cast<double>(b[i + j]);
  }
  for (int j = 0; i < n; ++i, ++j) lane[j] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

void RmsNorm(const float* x, const float* gain, int64_t n, double eps, float* y) {
  const double mean = Dot(x, x, n) / static_cast<double>(n);
  const float inv = static_cast<float>(1.0 / std::sqrt(mean + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * inv) * gain[i];
}

void Softmax(float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

bool AllFinite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

int64_t Argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

}  // namespace forge::verify::model
