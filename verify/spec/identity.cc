#include "verify/spec/identity.h"

#include <fmt/format.h>

#include <algorithm>

namespace forge::verify::spec {
namespace {

double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

struct Totals {
  int64_t drafted = 0, accepted = 0, rounds = 0, vanilla_tokens = 0, mtp_tokens = 0;
  double vanilla_s = 0, mtp_s = 0;
  std::vector<int64_t> accepted_at, reached_at;
  void Add(const PromptOutcome& p) {
    drafted += p.mtp.drafted;
    accepted += p.mtp.accepted;
    rounds += static_cast<int64_t>(p.mtp.rounds.size());
    vanilla_tokens += static_cast<int64_t>(p.vanilla.tokens.size());
    mtp_tokens += static_cast<int64_t>(p.mtp.tokens.size());
    vanilla_s += p.vanilla.decode_seconds;
    mtp_s += p.mtp.decode_seconds;
    accepted_at.resize(std::max(accepted_at.size(), p.mtp.accepted_at.size()), 0);
    reached_at.resize(accepted_at.size(), 0);
    for (size_t j = 0; j < p.mtp.accepted_at.size(); ++j) {
      accepted_at[j] += p.mtp.accepted_at[j];
      reached_at[j] += p.mtp.reached_at[j];
    }
  }
  nlohmann::json Json() const {
    nlohmann::json per = nlohmann::json::array();
    for (size_t j = 0; j < accepted_at.size(); ++j) {
      per.push_back({{"draft_index", j},
                     {"accepted", accepted_at[j]},
                     {"reached", reached_at[j]},
                     {"rate", Ratio(static_cast<double>(accepted_at[j]), static_cast<double>(rounds))},
                     {"conditional_rate",
                      Ratio(static_cast<double>(accepted_at[j]), static_cast<double>(reached_at[j]))}});
    }
    return {{"drafted", drafted},
            {"accepted", accepted},
            {"rounds", rounds},
            {"acceptance", Ratio(static_cast<double>(accepted), static_cast<double>(drafted))},
            {"mean_accepted_length",
             rounds ? 1.0 + static_cast<double>(accepted) / static_cast<double>(rounds) : 0.0},
            {"per_position", per},
            {"tokens_per_s",
             {{"vanilla", Ratio(static_cast<double>(vanilla_tokens), vanilla_s)},
              {"mtp", Ratio(static_cast<double>(mtp_tokens), mtp_s)}}}};
  }
};

}  // namespace

bool IdentityOutcome::identical() const {
  return std::all_of(prompts.begin(), prompts.end(), [](const PromptOutcome& p) { return p.identical; });
}

IdentityOutcome RunIdentity(const model::Decoder& dec, const model::MtpHead& mtp,
                            const std::vector<std::vector<int64_t>>& prompts, const DecodeOptions& o,
                            const std::function<void(size_t, size_t)>& progress) {
  IdentityOutcome r;
  r.options = o;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (progress) progress(i, prompts.size());
    PromptOutcome p;
    p.prompt = prompts[i];
    p.vanilla = PlainGreedy(dec, p.prompt, o);
    p.mtp = SpeculativeGreedy(dec, mtp, p.prompt, o);
    // Non-finite logits choose no token: such a run proves nothing, whatever the tokens say.
    p.identical = p.vanilla.tokens == p.mtp.tokens && !p.vanilla.non_finite.found() && !p.mtp.non_finite.found();
    if (!p.identical) {
      const auto& a = p.vanilla.tokens;
      const auto& b = p.mtp.tokens;
      const size_t n = std::min(a.size(), b.size());
      size_t at = 0;
      while (at < n && a[at] == b[at]) ++at;
      p.divergence = static_cast<int64_t>(at);
    }
    r.prompts.push_back(std::move(p));
  }
  return r;
}

nlohmann::json IdentityJson(const IdentityOutcome& r, const BpeTokenizer* tok) {
  Totals all;
  nlohmann::json prompts = nlohmann::json::array();
  for (const auto& p : r.prompts) {
    Totals one;
    one.Add(p);
    all.Add(p);
    nlohmann::json j = one.Json();
    j["prompt"] = p.prompt;
    j["vanilla"] = p.vanilla.tokens;
    j["mtp"] = p.mtp.tokens;
    j["identical"] = p.identical;
    if (p.divergence >= 0) {
      auto at = [](const std::vector<int64_t>& v, int64_t i) -> nlohmann::json {
        return i < static_cast<int64_t>(v.size()) ? nlohmann::json(v[static_cast<size_t>(i)])
                                                  : nlohmann::json();
      };
      j["first_divergence"] = {{"position", p.divergence},
                               {"vanilla", at(p.vanilla.tokens, p.divergence)},
                               {"mtp", at(p.mtp.tokens, p.divergence)}};
    }
    if (tok) {
      j["prompt_text"] = tok->Decode(p.prompt);
      j["vanilla_text"] = tok->Decode(p.vanilla.tokens);
    }
    prompts.push_back(std::move(j));
  }
  nlohmann::json out = all.Json();
  out["identical"] = r.identical();
  out["depth"] = r.options.depth;
  out["mtp_hidden"] = r.options.mtp_post_norm ? "post-norm" : "pre-norm";
  out["max_tokens"] = r.options.max_tokens;
  out["acceptance_definition"] = "accepted draft tokens / verified draft tokens";
  out["prompts"] = std::move(prompts);
  return out;
}

std::string IdentityText(const IdentityOutcome& r, const BpeTokenizer* tok) {
  std::string s;
  Totals all;
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    const auto& p = r.prompts[i];
    Totals one;
    one.Add(p);
    all.Add(p);
    s += fmt::format("prompt {}: {} prompt tokens, {} generated: {}", i, p.prompt.size(),
                     p.vanilla.tokens.size(), p.identical ? "identical" : "DIVERGED");
    if (!p.identical) {
      const auto& a = p.vanilla.tokens;
      const auto& b = p.mtp.tokens;
      const size_t d = static_cast<size_t>(p.divergence);
      s += fmt::format(" at token {} (plain {}, mtp {})", d, d < a.size() ? std::to_string(a[d]) : "end",
                       d < b.size() ? std::to_string(b[d]) : "end");
    }
    s += fmt::format(
        ", acceptance {:.1f}% ({}/{}), {:.2f} tokens per verify\n",
        100 * Ratio(static_cast<double>(one.accepted), static_cast<double>(one.drafted)), one.accepted,
        one.drafted,
        one.rounds ? 1.0 + static_cast<double>(one.accepted) / static_cast<double>(one.rounds) : 0.0);
    if (tok) s += fmt::format("  {}|{}\n", tok->Decode(p.prompt), tok->Decode(p.vanilla.tokens));
  }
  const nlohmann::json t = all.Json();
  s += fmt::format("depth {}, MTP fed the {} hidden: {}\n", r.options.depth,
                   r.options.mtp_post_norm ? "post-norm" : "pre-norm",
                   r.identical() ? "MTP speculative decoding emitted exactly the greedy tokens"
                                 : "MTP speculative decoding DIVERGED from greedy");
  s += fmt::format("acceptance {:.1f}% ({} of {} drafts), mean accepted length {:.2f}, per position:",
                   100 * t["acceptance"].get<double>(), all.accepted, all.drafted,
                   t["mean_accepted_length"].get<double>());
  for (const auto& pp : t["per_position"]) {
    s += fmt::format(" d{} {:.1f}% (cond. {:.1f}%)", pp["draft_index"].get<size_t>(),
                     100 * pp["rate"].get<double>(), 100 * pp["conditional_rate"].get<double>());
  }
  s += fmt::format("\ntokens/s: plain {:.1f}, mtp {:.1f}\n", t["tokens_per_s"]["vanilla"].get<double>(),
                   t["tokens_per_s"]["mtp"].get<double>());
  return s;
}

}  // namespace forge::verify::spec
