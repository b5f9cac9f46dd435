// The dequantize pass: every quantized module (<module>.weight + .scales [+ .biases]) becomes one float
// <module>.weight, with MLX's dequantize arithmetic; its parameters come from config.json's quantization
// block (an override entry, else the top level). Output dtype: `out` if given, else MLX's default (the
// scales dtype for affine, bfloat16 for the fp modes).
#pragma once

#include <optional>

#include "forge/ckpt/config.h"
#include "forge/plan/expr.h"
#include "quantize/codec.h"

namespace forge::quant {

Result<QuantParams> ParamsFromSpec(const QuantSpec& spec, const std::string& module);

Result<plan::Plan> DequantizePass(const plan::Plan& in, const QuantConfig& config, std::optional<DType> out);

}  // namespace forge::quant
