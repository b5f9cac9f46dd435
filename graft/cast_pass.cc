#include "graft/cast_pass.h"

#include "graft/pass_util.h"

namespace forge::graft {

Result<plan::Plan> CastFloats(const plan::Plan& in, DType to, bool overflow_allowed) {
  plan::Plan out;
  for (const auto& t : in.tensors) {
    const TensorRole role = RoleOf(t.name);
    const bool keep = role == TensorRole::kALog || role == TensorRole::kQuantScales ||
                      role == TensorRole::kQuantBiases || !IsFloat(t.expr->meta.dtype);
    if (keep || t.expr->meta.dtype == to) {
      out.tensors.push_back(t);
      continue;
    }
    // Fold into a pending add-constant so the value is rounded once (f32 -> `to`), not twice.
    if (t.expr->kind == plan::OpKind::kAddConstant) {
      FORGE_ASSIGN_OR_RETURN(plan::ExprPtr e, plan::AddConstant(t.expr->inputs[0], t.expr->constant, to, overflow_allowed));
      out.tensors.push_back({t.name, e});
      continue;
    }
    FORGE_ASSIGN_OR_RETURN(plan::ExprPtr e, plan::Cast(t.expr, to, overflow_allowed));
    out.tensors.push_back({t.name, e});
  }
  return out;
}

}  // namespace forge::graft
