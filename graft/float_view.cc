#include "graft/float_view.h"

#include "graft/convert.h"
#include "quantize/dequantize_pass.h"

namespace forge::graft {

Result<plan::Plan> MlxFloatView(const Checkpoint& ckpt) {
  FORGE_ASSIGN_OR_RETURN(plan::Plan p, plan::IdentityPlan(ckpt));
  if (ckpt.HasQuantizedTensors()) {
    if (!ckpt.config() || !ckpt.config()->quant) {
      return Status::Invalid("quantized tensors but config.json has no quantization block", ckpt.dir());
    }
    FORGE_ASSIGN_OR_RETURN(p, quant::DequantizePass(p, *ckpt.config()->quant, std::nullopt));
  }
  FORGE_ASSIGN_OR_RETURN(ConvertPlan cp, BuildConvertPlanFrom(ckpt, std::move(p), ConvertOptions{}));
  return std::move(cp.plan);
}

}  // namespace forge::graft
