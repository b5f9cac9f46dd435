// MLX's quantization formats as config.json and the command line name them: which (mode, bits, group size)
// exist. One rule for every command (inspect, convert, quantize, dequantize, verify) and the codecs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace forge {

// The rule broken, or nullopt: affine bits 2-6 or 8 with group 32/64/128; mxfp4 4/32; mxfp8 8/32; nvfp4 4/16.
std::optional<std::string> QuantParamsProblem(std::string_view mode, int bits, int group_size);

}  // namespace forge
