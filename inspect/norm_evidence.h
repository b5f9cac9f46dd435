// RMSNorm convention of a checkpoint: zero_centered (raw HF, y = x̂·(1+w)), shifted (MLX, w+1 stored) or
// mixed, with the evidence used (spec §3.6, pitfalls 3, 5, 6).
//
// The backbone is decided by the conv1d layout only ([C,1,K] raw, [C,K,1] converted), never by weight
// magnitude. The MTP block has no conv and is judged relative to the backbone, in two groups, because
// third-party converters have shifted one and not the other (omlx #1507: MTP layer norms left raw):
//   - layer norms (input, post-attention, q, k of mtp.layers.N): each is compared with the same norm family
//     of the backbone, whose convention is known, and votes for the convention it sits closer to (>= 3:1
//     decides, else "mixed");
//   - head norms (mtp.norm, pre_fc_norm_hidden, pre_fc_norm_embedding): mtp.norm is compared with the
//     backbone's final norm; the pre_fc norms follow it. They are never judged by their own magnitude
//     (their gammas are < 0.5 in both conventions, omlx #3750).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "forge/ckpt/checkpoint.h"

namespace forge::inspect {

enum class NormConvention { kZeroCentered, kShifted, kMixed, kUnknown };
std::string_view NormConventionName(NormConvention c);

struct NormEvidence {
  NormConvention trunk = NormConvention::kUnknown;
  NormConvention mtp_layers = NormConvention::kUnknown;  // kUnknown when there is no MTP block
  NormConvention mtp_head = NormConvention::kUnknown;
  NormConvention mtp = NormConvention::kUnknown;  // both groups agreeing, else kMixed
  NormConvention overall = NormConvention::kUnknown;
  bool mtp_declared = false;  // the MTP conventions come from the config's declared encoding, not magnitudes
  std::vector<std::string> evidence;
  std::vector<std::string> mtp_layer_norm_tensors;  // mtp.layers.N.{input_layernorm,post_attention_layernorm,q_norm,k_norm}
  std::vector<std::string> mtp_head_norm_tensors;   // mtp.norm, mtp.pre_fc_norm_*
  bool has_mtp_norms() const { return !mtp_layer_norm_tensors.empty() || !mtp_head_norm_tensors.empty(); }
};

// Mean of a small float tensor (a norm vector), or NaN for non-float dtypes.
double MeanOf(const TensorRef& ref);

// The config key declaring MTPLX's "delta" head-norm encoding, "" when none does.
std::string DeclaredDeltaKey(const Checkpoint& ckpt);

// One line naming each group's convention and, for the MTP groups, their tensors (for mixed refusals).
std::string DescribeNormGroups(const NormEvidence& ev);

// `format` is the detected naming ("hf"/"mlx"), used only when no conv1d exists at all.
NormEvidence DetectNormConvention(const Checkpoint& ckpt, const std::string& format);

}  // namespace forge::inspect
