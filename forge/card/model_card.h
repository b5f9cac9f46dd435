// The model card (README.md) every write leaves beside the weights, in the Hugging Face form the published
// checkpoints use: YAML front matter (base_model lineage, library_name, tags, license from SRC's card), then
// what was done, the quantization with its per-module overrides, the MTP head, build stats, the weight
// files' sha1 from forge-manifest.json, the verification section (`forge verify --identity --record` fills
// it; verify_record.h) and SRC's own card below. Every number is read from the written output (its headers,
// config and manifest) or measured by the run; nothing is estimated.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "forge/base/status.h"
#include "forge/ckpt/checkpoint.h"

namespace forge::card {

inline constexpr const char* kVerificationBegin = "<!-- forge:verification:begin -->";
inline constexpr const char* kVerificationEnd = "<!-- forge:verification:end -->";

struct Lineage {
  std::string role;     // "source", "MTP head donor"
  std::string dir;      // as given on the command line
  std::string repo_id;  // "Qwen/Qwen3.5-4B" when known (RepoIdOf), else ""
};

struct CardFacts {
  std::string command;       // convert | quantize | graft
  std::string command_line;  // the invocation, as typed
  std::string out_dir;       // the output as given (the card is rendered in its staging directory)
  std::string forge_version;
  std::vector<Lineage> lineage;   // SRC first
  std::vector<std::string> done;  // what the passes did, one line each
  std::string head_policy;        // how the MTP head was treated; "" without a head
  std::string layout;             // the runtime layout written (docs/LAYOUTS.md)
  unsigned threads = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// The Hugging Face repo id a checkpoint directory is a snapshot of: a hub cache path
// (.../models--ORG--NAME/snapshots/REV), else config.json's `_name_or_path` when it reads ORG/NAME.
std::string RepoIdOf(const Checkpoint& c);

// SRC's README.md split into its YAML front matter (without the --- lines) and its body.
struct SourceCard {
  std::string front_matter, body;
  std::string Scalar(const std::string& key) const;             // `key: value` at the top level, unquoted
  std::vector<std::string> List(const std::string& key) const;  // `key: [a, b]`, `key:\n- a`, or a scalar
};
SourceCard ParseSourceCard(const std::string& text);

// The card for the staged output `dir` (its config.json, headers and forge-manifest.json), with SRC's card
// (`src_card`, may be empty) kept below. `verify_record` is forge-verify.json's content or null.
Result<std::string> RenderCard(const CardFacts& facts, const std::string& dir, const std::string& src_card,
                               const nlohmann::json& verify_record);

// The verification section alone (between the markers), from forge-verify.json's content (null: not run).
std::string RenderVerification(const nlohmann::json& verify_record, const std::string& dir_name);

// Writes `dir`/README.md from RenderCard, with SRC's README.md (from `src_dir`, if any) below it.
Status WriteCard(const CardFacts& facts, const std::string& dir, const std::string& src_dir);

}  // namespace forge::card
