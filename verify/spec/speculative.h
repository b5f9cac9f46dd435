// Greedy decoding two ways over the reference decoder: plain (one token per backbone step) and MTP
// speculative at depth k (spec §5): verify [y, d_0..d_{k-1}] in one backbone pass, accept while the draft
// equals the target argmax, emit the bonus (all accepted) or the correction, restore the GDN snapshot and
// trim K/V on rejection, and keep the MTP cache exact: after each round every MTP slot q <= p + accepted
// holds (h_q from this verify pass, x_{q+1}), speculative chained entries are overwritten (§5.4).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "verify/model/decoder.h"

namespace forge::verify::spec {

struct DecodeOptions {
  int64_t max_tokens = 64;
  int depth = 1;              // drafts per verify round (1..4)
  bool mtp_post_norm = true;  // feed the MTP the final-norm output (vLLM, SGLang, mlx-vlm) or the residual
  int64_t eos_token = -1;     // stop after emitting it (-1: never)
};

// Where logits stopped being finite (NaN/Inf weights or an overflow): decoding stops there; nothing past
// it can be compared.
struct NonFinite {
  int64_t step = -1;  // index of the token the logits would have chosen; -1: all finite
  std::string where;  // "backbone" or "MTP head"
  bool found() const { return step >= 0; }
};

struct PlainResult {
  std::vector<int64_t> tokens;
  NonFinite non_finite;
  std::vector<std::vector<float>> step_logits;  // logits that chose tokens[i] (when asked for)
  double prefill_seconds = 0, decode_seconds = 0;
};

PlainResult PlainGreedy(const model::Decoder& dec, const std::vector<int64_t>& prompt, const DecodeOptions& o,
                        bool keep_logits = false);

// One verify round with drafts (the first, draft-less step is not a round).
struct Round {
  int64_t position = 0;          // position of y, the last emitted token, fed first
  std::vector<int64_t> drafts;   // d_0..d_{k-1}, for positions position+1..
  std::vector<int64_t> targets;  // target argmax at each verify position (k+1)
  int64_t accepted = 0;
};

struct SpecResult {
  std::vector<int64_t> tokens;
  NonFinite non_finite;
  std::vector<Round> rounds;
  int64_t drafted = 0, accepted = 0;             // verified drafts only
  std::vector<int64_t> accepted_at, reached_at;  // per draft index j: rounds accepting d_j, rounds reaching j
  double prefill_seconds = 0, decode_seconds = 0;
};

SpecResult SpeculativeGreedy(const model::Decoder& dec, const model::MtpHead& mtp,
                             const std::vector<int64_t>& prompt, const DecodeOptions& o);

}  // namespace forge::verify::spec
