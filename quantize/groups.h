// One quantization group at a time, the arithmetic of each mode and rule set (codec.cc drives them over
// rows, packs codes and stores scales). Inputs are the group's elements converted exactly to float32.
#pragma once

#include <cstdint>

#include "forge/base/dtype.h"
#include "quantize/codec.h"

namespace forge::quant {

// Affine: codes in [0, 2^bits - 1]; *scale and *bias are the float32 values the codes were chosen with
// (the caller rounds them to the storage dtype afterwards, as MLX does).
void AffineGroup(Rules rules, const float* w, int g, int bits, uint32_t* codes, float* scale, float* bias);

// mxfp4 (fp8 = false) / mxfp8 (fp8 = true), 32 elements: returns the E8M0 scale byte. `t` is the input
// dtype, to which MLX's CPU graph rounds every intermediate.
uint8_t MxfpGroup(Rules rules, DType t, bool fp8, const float* w, uint32_t* codes);

// nvfp4, 16 elements, no global scale: returns the E4M3 scale byte.
uint8_t Nvfp4Group(Rules rules, DType t, const float* w, uint32_t* codes);

}  // namespace forge::quant
