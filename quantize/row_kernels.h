// The hot loop of quantization: one row of float32 elements to codes and per-group scales, with explicit
// vectors of 16 lanes (AVX-512), 8 (AVX2) or 4 (SSE2, NEON), the widest the CPU runs picked at run time
// (row_kernels.cc says why each build has its own width). Every lane operation is
// the IEEE operation the scalar group code (groups.h) performs, so the codes and scales are the same bits
// (tests/quantize/row_kernels_test.cc compares both on random and tie-heavy rows, and vectors_test.cc
// compares the codec with the real MLX library). A group holding NaN or infinity, and MLX's CPU-rule fp
// modes on f16 input (rounding to f16 is not vectorized), go through the scalar code.
#pragma once

#include <cstdint>

#include "forge/base/dtype.h"
#include "quantize/codec.h"

namespace forge::quant {

// Per group of one row: affine fills scale/bias (float32, before storage rounding), the fp modes fill byte.
struct RowScales {
  float* scale;
  float* bias;
  uint8_t* byte;
};

// `w`: k float32 elements (k a multiple of the group size); `t`: the dtype they were read from (MLX's CPU
// rules round intermediates to it). Writes k codes.
void QuantizeRowF32(const QuantParams& p, Rules rules, DType t, const float* w, uint64_t k, uint32_t* codes,
                    const RowScales& out);

// Tests: run the build of `lanes` (4, 8, 16; 0 = the widest this CPU runs) from now on. False, and nothing
// changed, where this CPU cannot run it.
bool SetQuantizeLanes(int lanes);

// Packs k codes of p.bits each into one row of little-endian uint32 words (bitpack.h's layout).
void PackRow(const uint32_t* codes, uint64_t k, int bits, uint8_t* row);

}  // namespace forge::quant
