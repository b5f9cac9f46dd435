// One quantization group at a time, the arithmetic of each mode and rule set, in plain scalar code: the
// reference the vectorized row kernels (row_kernels.h) must equal bit for bit, and their fallback for
// groups holding NaN or infinity. Inputs are the group's elements converted exactly to float32.
#pragma once

#include <cstdint>

#include "forge/base/dtype.h"
#include "quantize/codec.h"

namespace forge::quant {

// Affine: codes in [0, 2^bits - 1]; *scale and *bias are the float32 values the codes were chosen with
// (the caller rounds them to the storage dtype afterwards, as MLX does).
void AffineGroup(Rules rules, const float* w, int g, int bits, uint32_t* codes, float* scale, float* bias);

// The affine scale and bias from the group's range: hi is the running maximum as the rules start it
// (Metal from 0, the CPU from the first element), lo the minimum.
struct AffineScale {
  float scale, bias;
};
AffineScale AffineScaleOf(Rules rules, float hi, float lo, int bits);

// mxfp4 (fp8 = false) / mxfp8 (fp8 = true), 32 elements: returns the E8M0 scale byte. `t` is the input
// dtype, to which MLX's CPU graph rounds every intermediate.
uint8_t MxfpGroup(Rules rules, DType t, bool fp8, const float* w, uint32_t* codes);

// nvfp4, 16 elements, no global scale: returns the E4M3 scale byte.
uint8_t Nvfp4Group(Rules rules, DType t, const float* w, uint32_t* codes);

// The scale of an fp group from its largest magnitude: the stored byte, and how elements are brought to
// the element grid: CPU rules x = round_to(t, w / divisor), Metal rules x = w * multiplier.
struct FpScale {
  uint8_t byte;
  float divisor, multiplier;
};
FpScale MxfpScaleOf(Rules rules, DType t, bool fp8, float amax);
FpScale Nvfp4ScaleOf(Rules rules, DType t, float amax);

}  // namespace forge::quant
