#include "graft/norm_shift_pass.h"

#include "graft/pass_util.h"

namespace forge::graft {

Result<plan::Plan> ShiftNorms(const plan::Plan& in, NormDeltas deltas, std::optional<DType> out_dtype) {
  plan::Plan out;
  for (const auto& t : in.tensors) {
    SplitName sn = SplitTensorName(t.name);
    const double delta = sn.part != ModelPart::kMtp ? deltas.backbone
                         : LayerIndex(sn.rel) >= 0  ? deltas.mtp_layers
                                                    : deltas.mtp_head;
    if (delta == 0 || !IsZeroCenteredNorm(ClassifyRole(sn)) || t.expr->meta.shape.size() != 1) {
      out.tensors.push_back(t);
      continue;
    }
    FORGE_ASSIGN_OR_RETURN(plan::ExprPtr e, plan::AddConstant(t.expr, delta, out_dtype.value_or(t.expr->meta.dtype)));
    out.tensors.push_back({t.name, e});
  }
  return out;
}

}  // namespace forge::graft
