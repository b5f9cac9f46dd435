// `forge verify --reference REF.tokens.json --model DIR`: the CPU reference decoder against another
// implementation's logits (transformers'), teacher-forced; exit 5 when a step or a draft disagrees.
#pragma once

#include <string>

#include "forge/cli/output.h"

namespace forge::cli {

struct ReferenceCheckOptions {
  std::string model, reference;
  std::string mtp_hidden = "post-norm";
  double tolerance = 1e-3, tie_gap = 1e-4;
  unsigned threads = 0;
};

int RunReferenceCheck(const ReferenceCheckOptions& o, const CommonFlags& flags);

}  // namespace forge::cli
