// `forge quantize` / `forge dequantize` as compositions of passes (DESIGN: quantize = open -> sanitize if
// raw -> dequantize if quantized -> quantize -> write):
//   HF raw Qwen checkpoint   -> the convert passes to MLX (as mlx_lm.convert -q does), then quantize;
//   MLX float                -> quantize;
//   MLX quantized            -> dequantize with its config's parameters, then quantize (requantize);
//   no Qwen3.5/3.6 model     -> pure tensor-level mode: names untouched, every 2-D+ float ".weight";
//   Qwen tensors, no config  -> refused (exit 4) unless --tensor-level.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "forge/ckpt/checkpoint.h"
#include "forge/plan/expr.h"
#include "quantize/fidelity.h"
#include "quantize/policy.h"

namespace forge::graft {

struct QuantizeOptions {
  quant::QuantPolicy policy;
  quant::Rules rules = quant::Rules::kMlxGpu;
  std::optional<DType> dtype;  // cast float weights first (scales of affine follow)
  bool allow_overflow = false;  // --allow-overflow: values past --dtype's range become infinities
  bool measure_fidelity = false;
  bool tensor_level = false;  // --tensor-level: a plain tensor set even where the names are Qwen's
};

struct QuantizeRecipe {
  plan::Plan plan;
  std::optional<nlohmann::json> config;
  std::map<std::string, std::string> metadata;
  std::map<std::string, quant::QuantParams> quantized;  // module -> parameters
  std::map<std::string, std::string> kept;              // matrix -> why it stays float
  std::shared_ptr<quant::FidelityCollector> fidelity;    // null unless measured
  std::string input_kind;                               // hf / mlx / mlx-quantized / tensors
  std::vector<std::string> notes;
};

Result<QuantizeRecipe> BuildQuantizeRecipe(const Checkpoint& ckpt, QuantizeOptions options);

// The float checkpoint of a quantized MLX one (config without its quantization blocks).
Result<QuantizeRecipe> BuildDequantizeRecipe(const Checkpoint& ckpt, std::optional<DType> dtype,
                                             bool allow_overflow = false);

}  // namespace forge::graft
