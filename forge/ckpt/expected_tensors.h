// The tensors a Qwen3.5/3.6 config implies, with their logical (unquantized) shapes, in part-relative
// names (see tensor_names.h): a table generated from the geometry, as gemma.cpp's TensorInfoRegistry.
// Used to find missing trunk/MTP tensors and shapes that disagree with config.json.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "forge/ckpt/config.h"
#include "forge/ckpt/tensor_names.h"

namespace forge {

// How a block stores its MLP experts (spec §2.4).
enum class ExpertLayout { kNone, kDense, kPerExpert, kFused, kSwitchMlp, kMixed };
std::string_view ExpertLayoutName(ExpertLayout l);

struct ExpectedTensor {
  ModelPart part;
  std::string rel;
  std::vector<uint64_t> shape;  // HF raw orientation (conv1d [C,1,K])
};

// Backbone: embeddings, every layer, final norm, and lm_head unless tied.
std::vector<ExpectedTensor> ExpectedTrunk(const TextGeometry& g, ExpertLayout layout);
// The MTP block (one decoder layer per mtp_layers, always full attention).
std::vector<ExpectedTensor> ExpectedMtp(const TextGeometry& g, ExpertLayout layout, int64_t mtp_layers);

}  // namespace forge
