// Which runtime layout a checkpoint is in (docs/LAYOUTS.md) and which runtimes will load it, with its MTP
// head, and why not where not; plus the known loader bugs this checkpoint would hit. From names, files and
// config, and the means of the head's norm vectors (kilobytes).
#pragma once

#include <string>
#include <vector>

#include "forge/ckpt/checkpoint.h"
#include "inspect/quant_report.h"

namespace forge::inspect {

struct RuntimeSupport {
  std::string runtime;  // vllm | transformers | mlx-lm | mlx-lm-pr990 | omlx | mtplx
  bool loads = false;   // the weights load
  bool mtp = false;     // ... with the MTP head, ready for speculative decoding
  std::string why;
};

struct LayoutReport {
  std::string name = "unknown";  // hf | mlx-lm | omlx | mtplx | unknown
  std::vector<std::string> evidence;
  std::vector<RuntimeSupport> runtimes;
  std::vector<std::string> warnings;  // known loader bugs this checkpoint meets
};

// `format`, `has_head` and `quant` as inspect found them (hf / mlx naming; MTP tensors present; its
// quantization report, not built twice).
LayoutReport DetectRuntimeLayout(const Checkpoint& ckpt, const std::string& format, bool has_head,
                                 const QuantReport& quant);

}  // namespace forge::inspect
