// `forge verify --reference`: the reference decoder against logits another implementation computed
// (transformers, made by scripts/make_fixtures.py or scripts/make_real_size.py). Teacher-forced along the
// reference's own sequence (prompt + its greedy tokens), so a flipped near-tie cannot cascade: at every
// step the decoder's argmax must be the reference's greedy token and its logits within a tolerance relative
// to the step's logit range; the MTP head's draft logits likewise at every slot (h_i, x_{i+1}).
//
// Because every step's argmax equals the reference token, free-running greedy decoding emits the
// reference's tokens too (the decoder computes a position the same bits alone or in a batch).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "forge/base/status.h"
#include "verify/model/decoder.h"

namespace forge::verify::spec {

struct ReferenceOptions {
  bool mtp_post_norm = true;
  double tolerance = 1e-3;  // max |logit - reference| / (max - min of the reference step's logits)
  double tie_gap = 1e-4;    // an argmax differing where the reference's top-2 gap is below this is a near-tie
};

// One position where the decoder's argmax is not the reference's.
struct ArgmaxMismatch {
  int64_t index = 0;  // step (backbone) or slot (MTP)
  int64_t reference = 0, forge = 0;
  double reference_gap = 0;  // reference logit of its own argmax minus its logit of forge's argmax
  bool near_tie = false;
};

struct LogitComparison {
  int64_t positions = 0, argmax_equal = 0;
  double max_abs_error = 0, max_rel_error = 0, min_logit_range = 0, max_logit_range = 0;
  double min_top2_gap = 0;  // smallest reference top-2 gap over the positions
  bool finite = true;
  std::vector<ArgmaxMismatch> mismatches;
  bool ok(const ReferenceOptions& o) const;
};

struct ReferenceCaseResult {
  std::vector<int64_t> prompt, greedy;
  LogitComparison steps;
  bool has_mtp = false;  // the reference has draft logits and the model a head
  LogitComparison mtp;
};

struct ReferenceReport {
  std::string reference;
  std::vector<ReferenceCaseResult> cases;
  std::string mtp_note;  // why the MTP was not compared, when it was not
  double seconds = 0;
  bool ok(const ReferenceOptions& o) const;
};

// Reads REF.tokens.json (cases [{prompt, greedy, ...}], logits_file) and the logits file beside it
// (case<i>.step_logits [steps, V], case<i>.mtp_{post,pre}_norm_logits [T-1, V]); errors name the file and
// the tensor.
Result<ReferenceReport> CompareWithReference(const model::Decoder& dec, const model::MtpHead* mtp,
                                             const std::string& tokens_json, const ReferenceOptions& o);

nlohmann::json ReferenceJson(const ReferenceReport& r, const ReferenceOptions& o);
std::string ReferenceText(const ReferenceReport& r, const ReferenceOptions& o);

}  // namespace forge::verify::spec
