// MLX quantization codecs: affine, mxfp4, mxfp8, nvfp4, bit-identical to `mx.quantize` under either rule
// set (docs MLX_QUANT_FORMATS.md): kMlxGpu reproduces the Metal kernels (what a Mac's mlx_lm.convert
// writes), kMlxCpu the CPU backend (a Linux MLX). Dequantize follows MLX's CPU op graph.
//
// Rows of `k` elements along the last axis; groups never cross rows; stacked experts are just more rows.
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "forge/base/dtype.h"
#include "forge/base/status.h"

namespace forge::quant {

enum class QuantMode { kAffine, kMxfp4, kMxfp8, kNvfp4 };
enum class Rules { kMlxGpu, kMlxCpu };

struct QuantParams {
  QuantMode mode = QuantMode::kAffine;
  int bits = 4;
  int group_size = 64;
};

std::string_view QuantModeName(QuantMode m);
std::optional<QuantMode> ParseQuantMode(std::string_view name);
// MLX's defaults per mode: affine 4/64, mxfp4 4/32, mxfp8 8/32, nvfp4 4/16.
QuantParams DefaultParams(QuantMode m);
// MLX's rules: affine group 32/64/128 and bits 2-6 or 8; mxfp4 32/4; mxfp8 32/8; nvfp4 16/4.
Status ValidateParams(const QuantParams& p);

// Scales are stored in the input dtype for affine, as U8 (E8M0 / E4M3 bytes) otherwise.
DType ScalesDType(const QuantParams& p, DType input);
bool HasBiases(const QuantParams& p);

// Quantizes `rows` rows of `k` elements (`in`, dtype `dtype`: F16, BF16 or F32; k % group_size == 0).
// Outputs: `packed` rows*k*bits/8 bytes (uint32 little-endian words), `scales` rows*(k/group) elements of
// ScalesDType, `biases` likewise for affine (else unused, may be null).
void QuantizeRows(const QuantParams& p, Rules rules, DType dtype, const uint8_t* in, uint64_t rows, uint64_t k,
                  uint8_t* packed, uint8_t* scales, uint8_t* biases);

// Inverse with MLX's CPU arithmetic; `out_dtype` F16, BF16 or F32. MLX's default output dtype is the scales
// dtype for affine and BF16 for the fp modes (DefaultDequantDType).
// Per group, the group's constants are computed once and, where a group has at least as many elements as
// there are codes (bits <= log2(group)), every code's output bits are tabulated and the codes looked up; the
// arithmetic per code is the reference's, so the bytes are the same (dequantize_rows.cc).
void DequantizeRows(const QuantParams& p, DType scales_dtype, const uint8_t* packed, const uint8_t* scales,
                    const uint8_t* biases, uint64_t rows, uint64_t k, DType out_dtype, uint8_t* out);
// The element-by-element definition, kept as the test oracle.
void DequantizeRowsReference(const QuantParams& p, DType scales_dtype, const uint8_t* packed, const uint8_t* scales,
                             const uint8_t* biases, uint64_t rows, uint64_t k, DType out_dtype, uint8_t* out);
DType DefaultDequantDType(const QuantParams& p, DType scales_dtype);

}  // namespace forge::quant
