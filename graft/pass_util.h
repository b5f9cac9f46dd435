// Small helpers shared by the passes: classify a plan entry by its (current) name.
#pragma once

#include <string>

#include "forge/ckpt/tensor_names.h"
#include "forge/plan/expr.h"

namespace forge::graft {

inline TensorRole RoleOf(const std::string& name) { return ClassifyRole(SplitTensorName(name)); }
inline ModelPart PartOf(const std::string& name) { return SplitTensorName(name).part; }

}  // namespace forge::graft
