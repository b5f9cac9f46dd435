// JSON from files a user hands forge (config.json, indexes, manifests, prompts, tokenizers, safetensors
// headers), parsed with a nesting limit: nlohmann copies, compares and destroys values recursively, so a
// file nested a million levels deep would overflow the stack long after parsing succeeded. One validating
// SAX pass (depth, and repeated keys where asked) runs before the DOM is built; both are linear in the text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "forge/base/status.h"

namespace forge {

inline constexpr int kMaxJsonDepth = 128;  // real files nest under 10 levels

struct JsonParseOptions {
  bool reject_duplicate_keys = false;  // a DOM parse silently keeps one of them
  int max_depth = kMaxJsonDepth;
};

// On failure the status (exit 1) says why without naming a file (callers add it): not valid JSON (with
// nlohmann's position), nested deeper than max_depth, or "duplicate key 'K'".
Result<nlohmann::json> ParseJsonText(std::string_view text, const JsonParseOptions& options = {});

// ParseJsonText with `path` and `what` ("config.json", "index", ...) in the message.
Result<nlohmann::json> ParseJsonFileText(std::string_view text, const std::string& path,
                                         const std::string& what);

}  // namespace forge
