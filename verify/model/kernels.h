// The decoder's arithmetic, written once so every position is computed the same way whether it runs
// alone or inside a verify pass (spec pitfall 25): norms, attention and the recurrences accumulate in f64
// in a fixed lane order, matrix products in 16 fixed f32 lanes (matmul.h), element-wise results are f32,
// and no reduction depends on how many tokens share a call.
//
// Definitions follow transformers' Qwen3.5 modules where they differ from MLX's (spec §4, §7): norms and
// softmax in f32 with f64 sums, the GDN l2norm epsilon inside the sum.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "verify/model/matmul.h"

namespace forge::verify::model {

inline float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float Silu(float x) { return x / (1.0f + std::exp(-x)); }
// torch.nn.functional.softplus (beta 1, threshold 20).
inline float Softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// Sum of a[i]*b[i] in f64, eight fixed lanes then a fixed lane fold.
double Dot(const float* a, const float* b, int64_t n);

// y = x / sqrt(mean(x^2) + eps) * gain, over n elements (gain is the multiplier, see weights.h).
void RmsNorm(const float* x, const float* gain, int64_t n, double eps, float* y);

// In-place softmax over n logits in f32 (f64 sum).
void Softmax(float* x, int64_t n);

// Index of the largest value; the lowest index wins ties (as torch.argmax on CPU).
int64_t Argmax(const float* x, int64_t n);
// False when some value is NaN or infinite (such logits choose no token: the weights are broken).
bool AllFinite(const float* x, int64_t n);

}  // namespace forge::verify::model
