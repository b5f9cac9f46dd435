// Whether a checkpoint is a Qwen3.5/3.6 model. The family's geometry rules (config.json against the
// tensors, the MLX conversion, the quantization recipe) apply only to checkpoints that say they are one;
// anything else is a plain set of tensors, handled tensor by tensor.
#pragma once

#include <string>

#include "forge/ckpt/checkpoint.h"

namespace forge {

struct QwenClaim {
  bool by_config = false;   // config.json's model_type, text_config.model_type or architectures name one
  bool by_tensors = false;  // the tensor names are the family's (Gated DeltaNet linear_attn, MTP fc)
  std::string evidence;     // the first reason, for messages ("config.json names 'qwen3_5'", "tensor 'X'")
  std::string tensor;       // the first family tensor, when by_tensors
  bool any() const { return by_config || by_tensors; }
};

// "qwen3_5", "qwen3_5_moe", "qwen3_6_text", "Qwen3_5ForConditionalGeneration", ...
bool NamesQwen35Family(const std::string& model_type_or_architecture);

QwenClaim ClaimsQwen35(const Checkpoint& ckpt);

}  // namespace forge
