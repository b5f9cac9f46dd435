// The quantize pass: every tensor the policy selects becomes <module>.weight (U32 packed codes),
// <module>.scales and, for affine, <module>.biases, computed once per module when the writer first asks
// for any of them. The others pass through. NaN or Inf in a tensor to quantize is an error naming it
// (MLX would silently write garbage).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "forge/plan/expr.h"
#include "quantize/fidelity.h"
#include "quantize/policy.h"

namespace forge::quant {

struct QuantizePassResult {
  plan::Plan plan;
  std::map<std::string, QuantParams> quantized;  // module path -> parameters
  std::map<std::string, std::string> kept;       // tensor name -> why it stays float (2-D+ .weight only)
};

// `fidelity` (may be null) receives dequantize(quantize(w)) vs w for every quantized tensor.
Result<QuantizePassResult> QuantizePass(const plan::Plan& in, const QuantPolicy& policy, Rules rules,
                                        std::shared_ptr<FidelityCollector> fidelity);

}  // namespace forge::quant
