// config.json's "quantization" block as mlx-lm reads it (spec §6.1): top-level group_size/bits/mode and one
// entry per module whose parameters differ from the top level, always with "mode" (an entry without it is
// affine to mlx-lm). Float modules get no entry: they are recognised by their missing .scales.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "quantize/codec.h"

namespace forge::quant {

nlohmann::json QuantizationBlock(const QuantParams& top, const std::map<std::string, QuantParams>& modules);

}  // namespace forge::quant
