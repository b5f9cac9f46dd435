// RMSNorm convention of a checkpoint: zero_centred (raw HF, y = x̂·(1+w)), shifted (MLX, w+1 stored) or
// mixed, with the evidence used (spec §3.6, pitfalls 3, 5, 6).
//
// The backbone is decided by the conv1d layout only ([C,1,K] raw, [C,K,1] converted), never by weight
// magnitude. The MTP block has no conv: its layer norms (input, post-attention, q, k) are compared with
// the same norm families of the backbone, whose convention is known, and each family votes for the
// convention it sits closer to. The pre_fc norms are never used (their gammas are < 0.5 in both
// conventions, omlx #3750).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "forge/ckpt/checkpoint.h"

namespace forge::inspect {

enum class NormConvention { kZeroCentred, kShifted, kMixed, kUnknown };
std::string_view NormConventionName(NormConvention c);

struct NormEvidence {
  NormConvention trunk = NormConvention::kUnknown;
  NormConvention mtp = NormConvention::kUnknown;  // kUnknown when there is no MTP block
  NormConvention overall = NormConvention::kUnknown;
  std::vector<std::string> evidence;
  std::vector<std::string> mtp_norm_tensors;  // the MTP norms that follow the MTP convention
};

// `format` is the detected naming ("hf"/"mlx"), used only when no conv1d exists at all.
NormEvidence DetectNormConvention(const Checkpoint& ckpt, const std::string& format);

}  // namespace forge::inspect
