// Proof of fit for a head transplant (refused, exit 3, unless --allow-lineage-mismatch): same text geometry
// (every field the decoder uses), same vocabulary, byte-identical tokenizer.json when both have one, the
// same trunk tensor set (names and shapes, after normalizing both to the MLX float view), MoE vs dense
// agreeing. Reported, never refused: how far SRC's trunk is from BASE's (relative L2 difference on a bounded
// sample of tensors), and what that looks like (a fine-tune of BASE, or an unrelated model).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "forge/ckpt/checkpoint.h"
#include "forge/plan/expr.h"

namespace forge::graft {

struct LineageStats {
  int sampled = 0, common = 0;
  double median_relative_l2 = 0, max_relative_l2 = 0;
  std::string verdict;
  std::vector<std::pair<std::string, double>> largest;  // the most different sampled tensors
};

struct FitReport {
  std::vector<std::string> refusals;
  std::vector<std::string> notes;
  LineageStats lineage;
  bool ok() const { return refusals.empty(); }
};

FitReport CheckFit(const Checkpoint& src, const plan::Plan& src_view, const Checkpoint& base, const plan::Plan& base_view);

}  // namespace forge::graft
