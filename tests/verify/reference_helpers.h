// Loads the transformers references in fixtures/references (tokens.json + logits.safetensors) and opens a
// fixture as the reference decoder sees it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "forge/ckpt/checkpoint.h"
#include "forge/st/reader.h"
#include "verify/model/decoder.h"

namespace forge::testing {

struct ReferenceCase {
  std::vector<int64_t> prompt, greedy, mtp_post_argmax, mtp_pre_argmax;
  std::vector<std::vector<float>> step_logits, mtp_post_logits, mtp_pre_logits;
  bool float64 = false;  // logits from transformers in float64 (else float32)
  std::vector<int64_t> sequence() const {
    std::vector<int64_t> s = prompt;
    s.insert(s.end(), greedy.begin(), greedy.end());
    return s;
  }
};

// NAME.tokens.json with the logits of NAME.f64.logits.safetensors when present, else NAME.logits.safetensors.
std::vector<ReferenceCase> LoadReference(const std::string& name);

// A fixture opened with its weights resolved; asserts on failure.
struct LoadedModel {
  std::unique_ptr<Checkpoint> ckpt;
  std::unique_ptr<verify::model::ModelWeights> weights;
};
LoadedModel LoadModel(const std::string& dir);

float MaxAbsDiff(const float* a, const std::vector<float>& b);

}  // namespace forge::testing
