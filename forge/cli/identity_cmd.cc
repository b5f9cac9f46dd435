#include "forge/cli/identity_cmd.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "forge/base/json_text.h"
#include "forge/base/progress.h"
#include "forge/base/thread_pool.h"
#include "forge/card/verify_record.h"
#include "forge/ckpt/hub_cache.h"
#include "forge/cli/version.h"
#include "verify/model/decoder.h"
#include "verify/spec/identity.h"
#include "verify/tokenizer/bpe_tokenizer.h"

namespace forge::cli {
namespace {

// Used when no prompt is given and the checkpoint has a tokenizer: code and prose, short.
const char* const kDefaultPrompts[] = {
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "import os\nimport sys\n\n\ndef main(argv):\n",
    "The quick brown fox jumps over the lazy dog. The quick brown",
};

Status Usage(const std::string& m) { return Status::Error(ExitCode::kUsage, m); }

constexpr int64_t kMaxPositions = int64_t{1} << 20;  // without max_position_embeddings in config.json

Result<std::vector<int64_t>> ParseTokenList(const std::string& s, int64_t vocab) {
  std::vector<int64_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v >= vocab) {
      return Usage(fmt::format("--prompt-tokens: '{}' is not a token id in [0, {})", item, vocab));
    }
    ids.push_back(v);
  }
  if (ids.empty()) return Usage("--prompt-tokens is empty");
  return ids;
}

Result<std::vector<int64_t>> EncodeText(const std::string& text, const verify::BpeTokenizer* tok,
                                        const std::string& where) {
  if (!tok) return Usage(where + ": text prompts need the checkpoint's tokenizer.json");
  auto ids = tok->Encode(text);
  if (!ids.ok()) return ids.status();
  if (ids->empty()) return Usage(where + ": the prompt encodes to no tokens");
  return ids;
}

// One prompt per line: {"prompt": "text"} or {"tokens": [..]} (or a bare JSON string / array).
Result<std::vector<std::vector<int64_t>>> ReadPromptsFile(const std::string& path,
                                                          const verify::BpeTokenizer* tok, int64_t vocab) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::Invalid("prompts file is not a regular file", path);
  std::ifstream in(path);
  if (!in) return Status::Invalid("cannot read prompts file", path);
  std::vector<std::vector<int64_t>> out;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path, no);
    auto parsed = ParseJsonText(line);
    if (!parsed.ok()) return Status::Invalid("line is not valid JSON: " + parsed.status().message(), where);
    nlohmann::json j = std::move(parsed).value();
    if (j.is_object() && j.contains("prompt"))
      j = j["prompt"];
    else if (j.is_object() && j.contains("tokens"))
      j = j["tokens"];
    if (j.is_string()) {
      auto ids = EncodeText(j.get<std::string>(), tok, where);
      if (!ids.ok()) return ids.status();
      out.push_back(*ids);
    } else if (j.is_array() && !j.empty() && std::all_of(j.begin(), j.end(), [&](const auto& v) {
                 return v.is_number_integer() && v.template get<int64_t>() >= 0 &&
                        v.template get<int64_t>() < vocab;
               })) {
      out.push_back(j.get<std::vector<int64_t>>());
    } else {
      return Status::Invalid("line is not {\"prompt\": TEXT} or {\"tokens\": [ids in the vocabulary]}",
                             where);
    }
  }
  if (out.empty()) return Status::Invalid("no prompts", path);
  return out;
}

}  // namespace

int RunIdentity(const IdentityOptions& o, const CommonFlags& flags) {
  if (o.depth < 1 || o.depth > 4) return ReportError(Usage("--depth must be 1..4"), flags);
  if (o.max_tokens < 1) return ReportError(Usage("--max-tokens must be >= 1"), flags);
  if (o.mtp_hidden != "post-norm" && o.mtp_hidden != "pre-norm") {
    return ReportError(Usage("--mtp-hidden must be post-norm or pre-norm"), flags);
  }
  const int given = !o.prompt_tokens.empty() + !o.prompts_file.empty() + !o.prompt_text.empty();
  if (given > 1) return ReportError(Usage("give one of --prompt-tokens, --prompts, --prompt"), flags);
  auto ckpt = OpenInput(o.model);
  if (!ckpt.ok()) return ReportError(ckpt.status(), flags);
  if (o.record && IsHubSnapshot((*ckpt)->dir())) {
    return ReportError(Usage("--record writes into the checkpoint, and " + (*ckpt)->dir() +
                             " is a Hugging Face cache snapshot (shared, replaced on the next download): verify a "
                             "copy or forge's own output"),
                       flags);
  }
  auto weights = verify::model::LoadModelWeights(**ckpt);
  if (!weights.ok()) return ReportError(weights.status(), flags);
  if (!weights->has_mtp) {
    return ReportError(
        Status::Error(ExitCode::kNothingToDo,
                      "no MTP head (mtp.* tensors): nothing to verify; graft one with `forge graft`",
                      o.model),
        flags);
  }
  std::unique_ptr<verify::BpeTokenizer> tok;
  const std::string tok_path = (std::filesystem::path((*ckpt)->dir()) / "tokenizer.json").string();
  if (std::filesystem::exists(tok_path)) {
    auto t = verify::BpeTokenizer::Load(tok_path);
    if (!t.ok()) return ReportError(t.status(), flags);
    tok = std::move(*t);
  }
  const int64_t vocab = weights->geo.vocab;
  std::vector<std::vector<int64_t>> prompts;
  if (!o.prompt_tokens.empty()) {
    auto ids = ParseTokenList(o.prompt_tokens, vocab);
    if (!ids.ok()) return ReportError(ids.status(), flags);
    prompts.push_back(*ids);
  } else if (!o.prompts_file.empty()) {
    auto p = ReadPromptsFile(o.prompts_file, tok.get(), vocab);
    if (!p.ok()) return ReportError(p.status(), flags);
    prompts = std::move(*p);
  } else {
    std::vector<std::string> texts;
    if (!o.prompt_text.empty())
      texts.push_back(o.prompt_text);
    else
      texts.assign(std::begin(kDefaultPrompts), std::end(kDefaultPrompts));
    for (const auto& text : texts) {
      auto ids = EncodeText(text, tok.get(),
                            o.prompt_text.empty() ? "default prompts (give --prompt-tokens)" : "--prompt");
      if (!ids.ok()) return ReportError(ids.status(), flags);
      prompts.push_back(*ids);
    }
  }
  for (const auto& p : prompts) {
    for (int64_t id : p) {
      if (id >= vocab)
        return ReportError(Usage(fmt::format("prompt token {} is outside the vocabulary ({})", id, vocab)),
                           flags);
    }
  }
  // Positions past what the model was built for are meaningless (RoPE, caches): the prompt and the tokens
  // to generate must fit max_position_embeddings (and forge's own bound where the config gives none).
  const int64_t max_pos = (*ckpt)->config()->text.max_position_embeddings;
  const int64_t limit = max_pos > 0 ? max_pos : kMaxPositions;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int64_t need = std::min(o.max_tokens, limit + 1) + static_cast<int64_t>(prompts[i].size());
    if (need > limit) {
      return ReportError(
          Status::Invalid(fmt::format("prompt {} has {} tokens; with --max-tokens {} that is {} positions, past {} "
                                      "({})",
                                      i + 1, prompts[i].size(), o.max_tokens, need, limit,
                                      max_pos > 0 ? "max_position_embeddings of config.json" : "forge's bound"),
                          (std::filesystem::path((*ckpt)->dir()) / "config.json").string()),
          flags);
    }
  }

  ThreadPool pool(o.threads);
  verify::model::Decoder dec(*weights, &pool);
  verify::model::MtpHead mtp(*weights, &pool);
  verify::spec::DecodeOptions d;
  d.max_tokens = o.max_tokens;
  d.depth = o.depth;
  d.mtp_post_norm = o.mtp_hidden == "post-norm";
  d.eos_token = o.ignore_eos ? -1 : weights->eos_token;
  const bool tty = flags.show_progress() && Progress::StderrIsTty();
  auto outcome = verify::spec::RunIdentity(dec, mtp, prompts, d, [&](size_t i, size_t n) {
    if (tty) std::fprintf(stderr, "\rverify --identity: prompt %zu/%zu ", i + 1, n);
  });
  if (tty) std::fprintf(stderr, "\r%40s\r", "");
  for (size_t i = 0; i < outcome.prompts.size(); ++i) {
    const auto& p = outcome.prompts[i];
    const verify::spec::NonFinite& nf = p.vanilla.non_finite.found() ? p.vanilla.non_finite : p.mtp.non_finite;
    if (nf.found()) {
      return ReportError(
          Status::Error(ExitCode::kVerifyFailed,
                        fmt::format("prompt {}: the {}'s logits are not finite (NaN or Inf) at generated token {}: "
                                    "the weights hold non-finite values or overflow, so nothing can be verified "
                                    "(forge quantize names a non-finite tensor)",
                                    i + 1, nf.where, nf.step),
                        o.model),
          flags);
    }
  }
  const int code = outcome.identical() ? 0 : static_cast<int>(ExitCode::kVerifyFailed);
  nlohmann::json j = verify::spec::IdentityJson(outcome, tok.get());
  std::optional<card::RecordResult> recorded;
  if (o.record) {
    auto r = card::RecordIdentity((*ckpt)->dir(), j, VersionString());
    if (!r.ok()) return ReportError(r.status(), flags);
    recorded = *r;
  }
  if (flags.json) {
    if (recorded) j["record"] = {{"file", recorded->record_path}, {"card_updated", recorded->card_updated}};
    j["model"] = o.model;
    j["notes"] = weights->notes;
    j["exit_code"] = code;
    PrintJson(j);
  } else {
    std::printf("%s", verify::spec::IdentityText(outcome, tok.get()).c_str());
    if (recorded) {
      std::printf("recorded in %s%s\n", recorded->record_path.c_str(),
                  recorded->card_updated ? " and the model card's verification section" : " (no forge model card to update)");
    }
  }
  return code;
}

}  // namespace forge::cli
