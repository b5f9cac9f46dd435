// `forge graft`: transplant BASE's MTP head into SRC (a fine-tune that lost it).
//
// The head is taken from BASE in the normalized MLX float view and adapted to SRC's format: MLX SRC gets
// `language_model.mtp.*`, switch_mlp experts, +1 norms (decided per norm group from BASE's evidence, never
// twice; a mixed head is refused), quantized per the MTP policy inside SRC's quantization (mtp.fc float, the
// layer like the trunk; a BASE module already quantized with the same parameters is copied verbatim); HF SRC
// gets `mtp.*` raw (BASE's own tensors verbatim when BASE is raw HF; else -1 norms, per-expert MTP experts,
// dequantized). Every SRC trunk tensor is carried byte for byte; the head is packaged for a runtime layout
// (docs/LAYOUTS.md): omlx / mlx-lm / hf in its own indexed shard model-mtp.safetensors, mtplx as the
// mtp.safetensors sidecar with declared zero-centred norms and mtplx_runtime.json. The layout must be SRC's
// family (MLX layouts for an MLX SRC, hf for HF): the trunk is never converted here.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "forge/ckpt/checkpoint.h"
#include "graft/fit_check.h"
#include "graft/runtime_layout.h"
#include "graft/trunk_layout.h"
#include "quantize/codec.h"

namespace forge::graft {

struct GraftOptions {
  std::optional<RuntimeLayout> layout;  // default: omlx for an MLX SRC, hf for HF
  bool allow_lineage_mismatch = false;
  std::string mtp_policy = "skip-fc";  // skip-fc | keep | match | MODE:BITS:GROUP
  quant::Rules rules = quant::Rules::kMlxGpu;
  std::string forge_version = "0";
};

struct GraftPlan {
  TrunkLayout out;                 // trunk carried/rewritten + the head shard
  nlohmann::json config;
  FitReport fit;
  std::string src_format, base_format;
  RuntimeLayout layout = RuntimeLayout::kOmlx;
  std::optional<nlohmann::json> runtime_contract;  // mtplx_runtime.json (mtplx)
  std::map<std::string, std::string> head;  // output name -> how it was made
  std::vector<std::string> notes;
};

Result<GraftPlan> BuildGraftPlan(const Checkpoint& src, const Checkpoint& base, const GraftOptions& options);

// sha1 of a file's bytes, "" when absent (provenance).
std::string FileSha1(const std::string& path);

}  // namespace forge::graft
