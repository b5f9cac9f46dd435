#include "verify/spec/speculative.h"

#include <algorithm>
#include <chrono>

namespace forge::verify::spec {
namespace {

using model::ForwardOutput;
using model::LogitsFor;
using model::Rows;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// True once the output is complete; trims what lies past max_tokens or after the first EOS.
bool Finish(std::vector<int64_t>& tokens, const DecodeOptions& o) {
  bool done = false;
  if (o.eos_token >= 0) {
    auto it = std::find(tokens.begin(), tokens.end(), o.eos_token);
    if (it != tokens.end()) {
      tokens.erase(it + 1, tokens.end());
      done = true;
    }
  }
  if (static_cast<int64_t>(tokens.size()) >= o.max_tokens) {
    tokens.resize(static_cast<size_t>(o.max_tokens));
    done = true;
  }
  return done;
}

Rows SelectRows(const Rows& from, int64_t count) {
  Rows r(count, from.width);
  std::copy(from.data.begin(), from.data.begin() + count * from.width, r.data.begin());
  return r;
}

}  // namespace

PlainResult PlainGreedy(const model::Decoder& dec, const std::vector<int64_t>& prompt, const DecodeOptions& o,
                        bool keep_logits) {
  PlainResult r;
  if (o.max_tokens <= 0 || prompt.empty()) return r;
  const int64_t V = dec.weights().geo.vocab;
  auto start = std::chrono::steady_clock::now();
  model::DecoderState st = dec.NewState();
  ForwardOutput out;
  dec.Forward(prompt, st, LogitsFor::kLast, out);
  r.prefill_seconds = Seconds(start);
  start = std::chrono::steady_clock::now();
  while (true) {
    const float* logits = out.logits.at(0);
    if (!model::AllFinite(logits, V)) {
      r.non_finite = {static_cast<int64_t>(r.tokens.size()), "backbone"};
      break;
    }
    if (keep_logits) r.step_logits.emplace_back(logits, logits + V);
    r.tokens.push_back(model::Argmax(logits, V));
    if (Finish(r.tokens, o)) break;
    dec.Forward({r.tokens.back()}, st, LogitsFor::kLast, out);
  }
  r.decode_seconds = Seconds(start);
  return r;
}

SpecResult SpeculativeGreedy(const model::Decoder& dec, const model::MtpHead& mtp,
                             const std::vector<int64_t>& prompt, const DecodeOptions& o) {
  SpecResult r;
  r.accepted_at.assign(static_cast<size_t>(o.depth), 0);
  r.reached_at.assign(static_cast<size_t>(o.depth), 0);
  if (o.max_tokens <= 0 || prompt.empty()) return r;
  const int64_t V = dec.weights().geo.vocab, n = static_cast<int64_t>(prompt.size());
  auto hidden_of = [&](const ForwardOutput& f) -> const Rows& {
    return o.mtp_post_norm ? f.post_norm : f.pre_norm;
  };

  auto start = std::chrono::steady_clock::now();
  model::DecoderState st = dec.NewState();
  model::MtpState ms = mtp.NewState();
  ForwardOutput out;
  model::MtpOutput mo;
  // Prefill all but the last prompt token; the MTP cache gets slots (h_j, t_{j+1}), j = 0..n-2 (§5.1).
  if (n > 1) {
    dec.Forward(std::vector<int64_t>(prompt.begin(), prompt.end() - 1), st, LogitsFor::kNone, out);
    mtp.Forward(hidden_of(out), std::vector<int64_t>(prompt.begin() + 1, prompt.end()), 0, ms, mo);
  }
  r.prefill_seconds = Seconds(start);
  start = std::chrono::steady_clock::now();

  int64_t y = prompt.back(), p = n - 1;
  std::vector<int64_t> drafts;  // none before the first backbone step
  model::GdnSnapshots snaps;    // reused by every verify pass: no allocation per round
  while (true) {
    const int64_t k = static_cast<int64_t>(drafts.size());
    std::vector<int64_t> feed{y};
    feed.insert(feed.end(), drafts.begin(), drafts.end());
    dec.Forward(feed, st, LogitsFor::kAll, out, k > 0 ? &snaps : nullptr);
    Round round{p, drafts, {}, 0};
    for (int64_t j = 0; j <= k; ++j) {
      if (!model::AllFinite(out.logits.at(j), V)) r.non_finite = {static_cast<int64_t>(r.tokens.size()) + j, "backbone"};
      round.targets.push_back(model::Argmax(out.logits.at(j), V));
    }
    if (r.non_finite.found()) break;
    int64_t m = 0;
    while (m < k && drafts[static_cast<size_t>(m)] == round.targets[static_cast<size_t>(m)]) ++m;
    round.accepted = m;
    // Emit d_0..d_{m-1} and the target at m (bonus when m == k, correction otherwise).
    std::vector<int64_t> slot_tokens(drafts.begin(), drafts.begin() + m);
    slot_tokens.push_back(round.targets[static_cast<size_t>(m)]);
    r.tokens.insert(r.tokens.end(), slot_tokens.begin(), slot_tokens.end());
    if (m < k) dec.Restore(st, snaps, p, m);  // state after y, d_0..d_{m-1}; K/V trimmed by k - m
    if (k > 0) {
      r.drafted += k;
      r.accepted += m;
      for (int64_t j = 0; j < k; ++j) {
        if (j <= m) ++r.reached_at[static_cast<size_t>(j)];
        if (j < m) ++r.accepted_at[static_cast<size_t>(j)];
      }
      r.rounds.push_back(std::move(round));
    }
    if (Finish(r.tokens, o)) break;
    // Exact MTP slots p..p+m from this pass's hiddens, then the first draft and k-1 chained ones.
    mtp.Forward(SelectRows(hidden_of(out), m + 1), slot_tokens, p, ms, mo);
    y = slot_tokens.back();
    p += m + 1;
    if (!model::AllFinite(mo.logits.at(m), V)) {
      r.non_finite = {static_cast<int64_t>(r.tokens.size()), "MTP head"};
      break;
    }
    drafts.assign(1, model::Argmax(mo.logits.at(m), V));
    Rows chained(1, mo.hidden.width);
    std::copy(mo.hidden.at(m), mo.hidden.at(m) + mo.hidden.width, chained.at(0));
    for (int j = 1; j < o.depth; ++j) {  // step j: (previous MTP hidden, previous draft) at position p-1+j
      mtp.Forward(chained, {drafts.back()}, p - 1 + j, ms, mo);
      if (!model::AllFinite(mo.logits.at(0), V)) {
        r.non_finite = {static_cast<int64_t>(r.tokens.size()) + j, "MTP head"};
        break;
      }
      drafts.push_back(model::Argmax(mo.logits.at(0), V));
      chained = mo.hidden;
    }
    if (r.non_finite.found()) break;
  }
  r.decode_seconds = Seconds(start);
  return r;
}

}  // namespace forge::verify::spec
