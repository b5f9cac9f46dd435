// The four runtime packagings of an MTP checkpoint (docs/LAYOUTS.md): hf (vLLM / SGLang / transformers),
// mlx-lm (the PR #990 native-MTP line), omlx (mlx-vlm single folder) and mtplx (trunk + mtp.safetensors
// sidecar + runtime contract). Naming, norms and experts come from the convert passes (hf or MLX); this file
// adds what is particular to each runtime: which part goes in which file, the MTPLX head's declared
// zero-centred norms, and the config keys each loader reads. Reading one is Checkpoint's job (a sidecar is a
// shard) plus the declared norm encoding (inspect/norm_evidence.h).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "forge/ckpt/checkpoint.h"
#include "forge/plan/expr.h"

namespace forge::graft {

enum class RuntimeLayout { kHf, kMlxLm, kOmlx, kMtplx };

std::optional<RuntimeLayout> ParseRuntimeLayout(const std::string& name);  // hf | mlx-lm | omlx | mtplx
std::string_view RuntimeLayoutName(RuntimeLayout l);
bool IsMlxLayout(RuntimeLayout l);  // every layout but hf

inline constexpr const char* kMtplxSidecar = "mtp.safetensors";
inline constexpr const char* kMtplxRuntimeFile = "mtplx_runtime.json";

// What a layout adds to a planned MLX (or HF) output.
struct RuntimeOutput {
  std::set<std::string> sidecar_tensors;  // output names written to `sidecar_file`, outside the index
  std::string sidecar_file;
  std::optional<nlohmann::json> runtime_contract;  // mtplx_runtime.json
  int head_norm_elements_rounded = 0;              // mtplx: shifted head norm elements whose s - 1 rounds
  std::vector<std::string> notes;
};

// The head's quantized modules, part-relative ("layers.0.self_attn.q_proj", "fc") -> their parameters.
using HeadQuantization = std::map<std::string, QuantSpec>;

// For a head carried from `src` (convert): the planned `.scales` with `src`'s quantization of each module
// (looked up by part-relative name in any naming, else `src`'s top level).
HeadQuantization HeadQuantizationOf(const plan::Plan& plan, const Checkpoint& src);

// Rewrites `plan` and `config` (already in the layout's naming family: MLX names and shifted norms for every
// MLX layout, HF for hf) into `layout`; `head_quantization` is what the planned head was quantized with.
Result<RuntimeOutput> ApplyRuntimeLayout(RuntimeLayout layout, const HeadQuantization& head_quantization,
                                         plan::Plan* plan, nlohmann::json* config, const std::string& forge_version);

}  // namespace forge::graft
