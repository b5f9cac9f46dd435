// MoE expert layouts (spec §2.4, §3.4; pitfalls 7, 8):
//   per_expert  <base>.experts.<e>.{gate,up,down}_proj.weight   [I,H] / [H,I]
//   fused       <base>.experts.gate_up_proj [E,2I,H] (gate rows first), <base>.experts.down_proj [E,H,I]
//   switch_mlp  <base>.switch_mlp.{gate,up,down}_proj.weight   [E,I,H] / [E,H,I]
// where <base> is "...layers.N.mlp". Backbone and MTP blocks are handled alike, each block may have its
// own layout. Idempotent.
#pragma once

#include "forge/ckpt/expected_tensors.h"
#include "forge/plan/expr.h"

namespace forge::graft {

// per_expert and fused -> switch_mlp. Experts must be numbered 0..E-1 without gaps.
Result<plan::Plan> StackExpertsToSwitchMlp(const plan::Plan& in);

// switch_mlp -> `backbone` / `mtp` layout (kFused or kPerExpert; kSwitchMlp keeps it).
Result<plan::Plan> UnstackSwitchMlp(const plan::Plan& in, ExpertLayout backbone, ExpertLayout mtp);

}  // namespace forge::graft
