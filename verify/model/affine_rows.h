// The decoder's kernels for MLX affine 4/8-bit matrices: y = sum_g scale_g * dot(q_g, x_g) + bias_g *
// sum(x_g), the form MLX's own quantized matrix-vector kernel uses. Codes are unpacked in registers, never
// dequantized to memory, and applied to every token of the batch at once (a verify pass reads each weight
// once for all its tokens).
//
// Three implementations: a portable one (GCC vectors, cloned for AVX2 and baseline x86, mul then add, per
// group scale * dot(q, x); what other CPUs run), an AVX2 one (intrinsics for 8 lanes and 16 registers,
// fused multiply-add, per group scale * dot(q, x)) and an AVX-512 one (one zero-extending load per 16 bytes
// of codes, codes looked up in a 16-entry table of scale * code by a permute, fused multiply-add), the best
// the CPU has picked once per process. Each gives a token the same bits alone, in a batch, and with any
// split of the rows: what the speculative-decoding identity proof needs. They differ from each other in
// the last bits (FMA rounds once; the sums are grouped differently).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "forge/base/simd16.h"
#include "verify/model/matrix.h"

namespace forge::verify::model {

// The tokens of one product. For 4 bits, xs are in EvenOddBlocks order.
struct AffineBatch {
  const float* const* xs;
  const float* const* xsums;  // per token, per group: sum(x_g)
  float* const* ys;
  size_t n;
};

// The kernels handle affine 4-bit with group_size % 32 == 0 and 8-bit with group_size % 16 == 0.
bool HasAffineKernel(const Matrix& w);

// Per 32-element block of x: its 16 even-indexed elements, then its 16 odd-indexed ones. 4-bit codes
// come in that order from one unpack (byte j holds code 2j in its low nibble, 2j+1 in its high one).
std::vector<float> EvenOddBlocks(const float* x, int64_t k);

// Row r of w (0-based in the view): its packed codes, and its scales and biases widened to f32 into
// scales/biases (k / group_size each).
struct AffineRow {
  const uint8_t* codes;
  uint64_t bytes;
};
inline AffineRow LoadAffineRow(const Matrix& w, int64_t r, float* scales, float* biases) {
  const Matrix::Quantized& q = w.quant();
  const int64_t groups = w.cols() / q.params.group_size;
  const uint64_t row = static_cast<uint64_t>(w.first_row() + r);
  const uint64_t bytes = static_cast<uint64_t>(w.cols() * q.params.bits / 8);
  const uint64_t scale_at = row * static_cast<uint64_t>(groups) * (DTypeBits(q.scales_dtype) / 8);
  simd::WidenToF32(q.scales_dtype, q.scales + scale_at, groups, scales);
  simd::WidenToF32(q.scales_dtype, q.biases + scale_at, groups, biases);
  return {w.packed_data() + row * bytes, bytes};
}

// Before row r of [r, end): the codes of the row kPrefetchRows ahead asked into L2, which the hardware
// prefetcher, stopping at page boundaries, may not have asked for yet.
inline constexpr int64_t kPrefetchRows = 8;
inline void PrefetchRowAhead(const AffineRow& row, int64_t r, int64_t end) {
  if (r + kPrefetchRows >= end) return;
  const uint8_t* ahead = row.codes + kPrefetchRows * row.bytes;
  for (uint64_t off = 0; off < row.bytes; off += 64) __builtin_prefetch(ahead + off, 0, 2);  // prefetcht1
}

// Rows [begin, end) of w for every token of b. scales/biases: scratch of k / group_size floats.
void AffineRows(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b, float* scales,
                float* biases);

// Which implementation AffineRows runs: the best this CPU has, or a given one (tests compare them all).
enum class AffineKernel { kBest, kPortable, kAvx2, kAvx512 };
void SetAffineKernel(AffineKernel kernel);
// Whether this CPU can run `kernel` (kBest and kPortable: always).
bool AffineKernelRuns(AffineKernel kernel);
// The kernel kBest resolves to on this CPU, and its name ("avx512", "avx2", "portable").
AffineKernel BestAffineKernel();
const char* AffineKernelName(AffineKernel kernel);

// The implementations (affine_rows.cc, affine_rows_avx2.cc, affine_rows_avx512.cc). The AVX2 and AVX-512
// ones may only run where AffineKernelRuns says so.
void AffineRowsPortable(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b, float* scales,
                        float* biases);
void AffineRowsAvx2(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b, float* scales,
                    float* biases);
void AffineRowsAvx512(const Matrix& w, int64_t begin, int64_t end, const AffineBatch& b, float* scales,
                      float* biases);
bool CpuHasAvx512();

}  // namespace forge::verify::model
