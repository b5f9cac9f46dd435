// How commands talk to the user: results on stdout (text or one JSON object with --json), errors as one
// line on stderr ("forge: error: FILE: tensor 'T': RULE") and, with --json, as {"error", "exit_code"}.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "forge/base/status.h"
#include "forge/ckpt/checkpoint.h"
#include "forge/plan/writer.h"

namespace forge::cli {

struct CommonFlags {
  bool json = false;
  bool quiet = false;
  void Add(CLI::App* cmd);
  bool show_progress() const { return !json && !quiet; }
};

int ReportError(const Status& st, const CommonFlags& flags);

// "bf16" / "f16" / "f32" (what --dtype accepts); nullopt for anything else, "" included.
std::optional<DType> ParseFloatDType(const std::string& name);

// Writer options for an output derived from `src`: src is never written to, its auxiliary files (tokenizer,
// templates, processor configs) are carried over, progress follows the flags.
plan::WriteOptions OutputOptions(const Checkpoint& src, const CommonFlags& flags, bool force, unsigned threads,
                                 uint64_t max_shard_size);
void PrintJson(const nlohmann::json& j);

// Opens a command's input: a directory or .safetensors file, or a Hugging Face repo id (ORG/NAME[@REV])
// resolved offline in the local hub cache (forge/ckpt/hub_cache.h).
Result<std::unique_ptr<Checkpoint>> OpenInput(const std::string& arg);

}  // namespace forge::cli
