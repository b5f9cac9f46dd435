#include "graft/float_view.h"

#include "graft/convert.h"
#include "quantize/dequantize_pass.h"

namespace forge::graft {

Result<plan::Plan> DequantizedPlan(const Checkpoint& ckpt, std::optional<DType> dtype) {
  FORGE_ASSIGN_OR_RETURN(plan::Plan p, plan::IdentityPlan(ckpt));
  if (!ckpt.HasQuantizedTensors()) return p;
  if (!ckpt.config() || !ckpt.config()->quant) {
    return Status::Invalid("quantized tensors but config.json has no quantization block", ckpt.dir());
  }
  return quant::DequantizePass(p, *ckpt.config()->quant, dtype);
}

Result<plan::Plan> MlxFloatView(const Checkpoint& ckpt) {
  FORGE_ASSIGN_OR_RETURN(plan::Plan p, DequantizedPlan(ckpt, std::nullopt));
  FORGE_ASSIGN_OR_RETURN(ConvertPlan cp, BuildConvertPlanFrom(ckpt, std::move(p), ConvertOptions{}));
  return std::move(cp.plan);
}

}  // namespace forge::graft
