// `forge verify --identity`: plain greedy vs MTP speculative greedy per prompt, compared token for token,
// with acceptance measured three ways (spec §5.5): per-draft acceptance = accepted / drafted (the headline
// `acceptance`), mean accepted length = 1 + accepted / rounds, per-position rates (unconditional =
// rounds accepting draft j / rounds; conditional = rounds accepting j / rounds reaching j).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "verify/spec/speculative.h"
#include "verify/tokenizer/bpe_tokenizer.h"

namespace forge::verify::spec {

struct PromptOutcome {
  std::vector<int64_t> prompt;
  PlainResult vanilla;
  SpecResult mtp;
  bool identical = false;
  int64_t divergence = -1;  // first index where the outputs differ (or where one ends)
};

struct IdentityOutcome {
  DecodeOptions options;
  std::vector<PromptOutcome> prompts;
  bool identical() const;
};

// `progress(i, n)` is called before each prompt (may be empty).
IdentityOutcome RunIdentity(const model::Decoder& dec, const model::MtpHead& mtp,
                            const std::vector<std::vector<int64_t>>& prompts, const DecodeOptions& o,
                            const std::function<void(size_t, size_t)>& progress = {});

// `tok` (may be null) adds decoded text. Totals are sums over prompts.
nlohmann::json IdentityJson(const IdentityOutcome& r, const BpeTokenizer* tok);
std::string IdentityText(const IdentityOutcome& r, const BpeTokenizer* tok);

}  // namespace forge::verify::spec
