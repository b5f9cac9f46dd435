#include "verify/spec/reference_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>

#include "forge/base/fs_util.h"
#include "forge/base/json_text.h"
#include "forge/base/simd16.h"
#include "forge/st/reader.h"
#include "verify/model/kernels.h"

namespace forge::verify::spec {
namespace {

// A [rows, V] float tensor of the reference logits file, read row by row from the mapping.
struct RefMatrix {
  const st::SafetensorsFile* file = nullptr;
  const st::TensorInfo* info = nullptr;
  int64_t rows() const { return info ? static_cast<int64_t>(info->shape[0]) : 0; }
  void Row(int64_t r, int64_t width, std::vector<float>& out) const {
    out.resize(static_cast<size_t>(width));
    const uint64_t bytes = static_cast<uint64_t>(DTypeBits(info->dtype)) / 8;
    simd::WidenToF32(info->dtype, file->Data(*info) + static_cast<uint64_t>(r) * width * bytes, width,
                     out.data());
  }
};

Result<RefMatrix> FindMatrix(const st::SafetensorsFile& f, const std::string& name, int64_t rows,
                             int64_t vocab, bool required) {
  RefMatrix m{&f, f.Find(name)};
  if (!m.info) {
    if (required) return Status::Invalid("reference logits are missing", f.path(), name);
    return m;
  }
  if (!IsFloat(m.info->dtype) || m.info->shape.size() != 2 ||
      static_cast<int64_t>(m.info->shape[0]) != rows || static_cast<int64_t>(m.info->shape[1]) != vocab) {
    return Status::Invalid(
        fmt::format("reference logits must be float [{}, {}] (the reference's positions x the "
                    "model's vocabulary)",
                    rows, vocab),
        f.path(), name);
  }
  return m;
}

// Compares one position; `want` is the reference's own choice at it.
void ComparePosition(const float* got, const std::vector<float>& ref, int64_t index, int64_t want,
                     const ReferenceOptions& o, LogitComparison& c) {
  const int64_t v = static_cast<int64_t>(ref.size());
  double max_abs = 0;
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  float top1 = -std::numeric_limits<float>::infinity(), top2 = top1;
  for (int64_t j = 0; j < v; ++j) {
    const float r = ref[static_cast<size_t>(j)], g = got[j];
    if (!std::isfinite(g)) c.finite = false;
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(g - r)));
    lo = std::min(lo, r);
    hi = std::max(hi, r);
    if (r > top1) {
      top2 = top1;
      top1 = r;
    } else if (r > top2) {
      top2 = r;
    }
  }
  const double range = static_cast<double>(hi) - lo;
  const double gap = static_cast<double>(top1) - top2;
  if (c.positions == 0) {
    c.min_logit_range = c.max_logit_range = range;
    c.min_top2_gap = gap;
  }
  c.min_logit_range = std::min(c.min_logit_range, range);
  c.max_logit_range = std::max(c.max_logit_range, range);
  c.min_top2_gap = std::min(c.min_top2_gap, gap);
  c.max_abs_error = std::max(c.max_abs_error, max_abs);
  c.max_rel_error = std::max(c.max_rel_error, range > 0 ? max_abs / range : max_abs);
  ++c.positions;
  const int64_t mine = model::Argmax(got, v);
  if (mine == want) {
    ++c.argmax_equal;
    return;
  }
  ArgmaxMismatch m;
  m.index = index;
  m.reference = want;
  m.forge = mine;
  m.reference_gap = static_cast<double>(ref[static_cast<size_t>(want)]) - ref[static_cast<size_t>(mine)];
  m.near_tie = m.reference_gap < o.tie_gap;
  c.mismatches.push_back(m);
}

Result<std::vector<int64_t>> Ids(const nlohmann::json& c, const char* key, const std::string& where,
                                 int64_t vocab, bool required) {
  if (!c.contains(key)) {
    if (required) return Status::Invalid(fmt::format("a case lacks \"{}\"", key), where);
    return std::vector<int64_t>{};
  }
  const nlohmann::json& a = c[key];
  std::vector<int64_t> ids;
  if (!a.is_array()) return Status::Invalid(fmt::format("\"{}\" must be an array of token ids", key), where);
  for (const auto& v : a) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab) {
      return Status::Invalid(
          fmt::format("\"{}\" holds a value that is not a token id in [0, {})", key, vocab), where);
    }
    ids.push_back(v.get<int64_t>());
  }
  return ids;
}

}  // namespace

bool LogitComparison::ok(const ReferenceOptions& o) const {
  if (!finite || !(max_rel_error <= o.tolerance)) return false;
  return std::all_of(mismatches.begin(), mismatches.end(),
                     [](const ArgmaxMismatch& m) { return m.near_tie; });
}

bool ReferenceReport::ok(const ReferenceOptions& o) const {
  return std::all_of(cases.begin(), cases.end(), [&](const ReferenceCaseResult& c) {
    return c.steps.ok(o) && (!c.has_mtp || c.mtp.ok(o));
  });
}

Result<ReferenceReport> CompareWithReference(const model::Decoder& dec, const model::MtpHead* mtp,
                                             const std::string& tokens_json, const ReferenceOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  auto text = ReadTextFile(tokens_json);
  if (!text.ok()) return text.status();
  auto parsed = ParseJsonFileText(*text, tokens_json, "reference");
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json j = std::move(parsed).value();
  if (!j.is_object() || !j.contains("cases") || !j["cases"].is_array() || j["cases"].empty() ||
      !j.contains("logits_file") || !j["logits_file"].is_string()) {
    return Status::Invalid("not a reference: needs \"cases\" [{prompt, greedy}] and \"logits_file\"",
                           tokens_json);
  }
  const std::string logits_name = j["logits_file"].get<std::string>();
  if (logits_name.empty() || logits_name.find('/') != std::string::npos) {
    return Status::Invalid("\"logits_file\" must name a file beside the reference", tokens_json);
  }
  const std::string logits_path = (std::filesystem::path(tokens_json).parent_path() / logits_name).string();
  auto file = st::SafetensorsFile::Open(logits_path);
  if (!file.ok()) return file.status();

  const int64_t vocab = dec.weights().geo.vocab;
  const char* which = o.mtp_post_norm ? "post_norm" : "pre_norm";
  ReferenceReport report;
  report.reference = tokens_json;
  std::vector<float> ref;
  for (size_t i = 0; i < j["cases"].size(); ++i) {
    const nlohmann::json& c = j["cases"][i];
    const std::string where = fmt::format("{} (case {})", tokens_json, i);
    if (!c.is_object()) return Status::Invalid("a case must be an object", where);
    ReferenceCaseResult r;
    auto prompt = Ids(c, "prompt", where, vocab, true);
    if (!prompt.ok()) return prompt.status();
    auto greedy = Ids(c, "greedy", where, vocab, true);
    if (!greedy.ok()) return greedy.status();
    r.prompt = *prompt;
    r.greedy = *greedy;
    if (r.prompt.empty() || r.greedy.empty()) return Status::Invalid("empty prompt or greedy tokens", where);
    std::vector<int64_t> seq = r.prompt;
    seq.insert(seq.end(), r.greedy.begin(), r.greedy.end());
    const int64_t steps = static_cast<int64_t>(r.greedy.size());
    const int64_t slots = static_cast<int64_t>(seq.size()) - 1;
    const std::string p = fmt::format("case{}.", i);
    auto step_logits = FindMatrix(**file, p + "step_logits", steps, vocab, true);
    if (!step_logits.ok()) return step_logits.status();
    auto draft_logits = FindMatrix(**file, p + "mtp_" + which + "_logits", slots, vocab, false);
    if (!draft_logits.ok()) return draft_logits.status();
    auto draft_argmax =
        Ids(c, o.mtp_post_norm ? "mtp_post_norm_argmax" : "mtp_pre_norm_argmax", where, vocab, false);
    if (!draft_argmax.ok()) return draft_argmax.status();

    // Positions 0..T-2: their logits choose tokens 1..T-1, their hiddens feed the MTP slots.
    model::DecoderState st = dec.NewState();
    model::ForwardOutput out;
    dec.Forward(std::vector<int64_t>(seq.begin(), seq.end() - 1), st, model::LogitsFor::kAll, out);
    const int64_t first = static_cast<int64_t>(r.prompt.size()) - 1;
    for (int64_t s = 0; s < steps; ++s) {
      step_logits->Row(s, vocab, ref);
      ComparePosition(out.logits.at(first + s), ref, s, r.greedy[static_cast<size_t>(s)], o, r.steps);
    }
    r.has_mtp = mtp && draft_logits->info;
    if (r.has_mtp) {
      const model::Rows& hidden = o.mtp_post_norm ? out.post_norm : out.pre_norm;
      model::MtpState ms = mtp->NewState();
      model::MtpOutput mo;
      mtp->Forward(hidden, std::vector<int64_t>(seq.begin() + 1, seq.end()), 0, ms, mo);
      for (int64_t q = 0; q < slots; ++q) {
        draft_logits->Row(q, vocab, ref);
        // The reference's own draft: its recorded argmax, else the argmax of its logits.
        const int64_t want = static_cast<int64_t>(draft_argmax->size()) == slots
                                 ? (*draft_argmax)[static_cast<size_t>(q)]
                                 : model::Argmax(ref.data(), vocab);
        ComparePosition(mo.logits.at(q), ref, q, want, o, r.mtp);
      }
    }
    report.cases.push_back(std::move(r));
  }
  if (!mtp) {
    report.mtp_note = "the model has no MTP head";
  } else if (std::none_of(report.cases.begin(), report.cases.end(),
                          [](const ReferenceCaseResult& c) { return c.has_mtp; })) {
    report.mtp_note = fmt::format("the reference has no mtp_{}_logits", which);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

namespace {

nlohmann::json ComparisonJson(const LogitComparison& c, const ReferenceOptions& o) {
  nlohmann::json mismatches = nlohmann::json::array();
  int64_t near_ties = 0;
  for (const auto& m : c.mismatches) {
    near_ties += m.near_tie;
    mismatches.push_back({{"index", m.index},
                          {"reference", m.reference},
                          {"forge", m.forge},
                          {"reference_gap", m.reference_gap},
                          {"near_tie", m.near_tie}});
  }
  return {{"positions", c.positions},
          {"argmax_equal", c.argmax_equal},
          {"near_ties", near_ties},
          {"argmax_mismatches", mismatches},
          {"max_abs_error", c.max_abs_error},
          {"max_rel_error", c.max_rel_error},
          {"logit_range", {c.min_logit_range, c.max_logit_range}},
          {"min_top2_gap", c.min_top2_gap},
          {"finite", c.finite},
          {"ok", c.ok(o)}};
}

// Totals over cases: worst errors, summed counts.
LogitComparison Total(const ReferenceReport& r, bool mtp) {
  LogitComparison t;
  bool first = true;
  for (const auto& c : r.cases) {
    if (mtp && !c.has_mtp) continue;
    const LogitComparison& x = mtp ? c.mtp : c.steps;
    if (x.positions == 0) continue;
    t.min_logit_range = first ? x.min_logit_range : std::min(t.min_logit_range, x.min_logit_range);
    t.max_logit_range = first ? x.max_logit_range : std::max(t.max_logit_range, x.max_logit_range);
    t.min_top2_gap = first ? x.min_top2_gap : std::min(t.min_top2_gap, x.min_top2_gap);
    first = false;
    t.positions += x.positions;
    t.argmax_equal += x.argmax_equal;
    t.max_abs_error = std::max(t.max_abs_error, x.max_abs_error);
    t.max_rel_error = std::max(t.max_rel_error, x.max_rel_error);
    t.finite = t.finite && x.finite;
    t.mismatches.insert(t.mismatches.end(), x.mismatches.begin(), x.mismatches.end());
  }
  return t;
}

}  // namespace

nlohmann::json ReferenceJson(const ReferenceReport& r, const ReferenceOptions& o) {
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& c : r.cases) {
    nlohmann::json x = {{"prompt", c.prompt}, {"greedy", c.greedy}, {"steps", ComparisonJson(c.steps, o)}};
    x["mtp"] = c.has_mtp ? ComparisonJson(c.mtp, o) : nlohmann::json(nullptr);
    cases.push_back(std::move(x));
  }
  nlohmann::json j = {{"reference", r.reference},
                      {"identical", r.ok(o)},
                      {"tolerance", o.tolerance},
                      {"tie_gap", o.tie_gap},
                      {"mtp_hidden", o.mtp_post_norm ? "post-norm" : "pre-norm"},
                      {"steps", ComparisonJson(Total(r, false), o)},
                      {"cases", cases},
                      {"seconds", r.seconds}};
  const LogitComparison m = Total(r, true);
  j["mtp"] = m.positions ? ComparisonJson(m, o) : nlohmann::json(nullptr);
  if (!r.mtp_note.empty()) j["mtp_note"] = r.mtp_note;
  return j;
}

std::string ReferenceText(const ReferenceReport& r, const ReferenceOptions& o) {
  std::string s;
  auto line = [&](const char* what, const LogitComparison& c) {
    int64_t ties = 0;
    for (const auto& m : c.mismatches) ties += m.near_tie;
    s += fmt::format(
        "{}: argmax equal {}/{}{}, max |logit - reference| {:.3g} ({:.3g} of the logit range, "
        "tolerance {:.3g}), min top-2 gap {:.3g}: {}\n",
        what, c.argmax_equal, c.positions, ties ? fmt::format(" ({} near-ties)", ties) : std::string(),
        c.max_abs_error, c.max_rel_error, o.tolerance, c.min_top2_gap, c.ok(o) ? "OK" : "MISMATCH");
    for (size_t i = 0; i < c.mismatches.size() && i < 10; ++i) {
      const auto& m = c.mismatches[i];
      s += fmt::format("  at {}: reference {}, forge {} (reference gap {:.3g}{})\n", m.index, m.reference,
                       m.forge, m.reference_gap, m.near_tie ? ", a near-tie" : "");
    }
  };
  s += fmt::format("reference {}: {} cases\n", r.reference, r.cases.size());
  line("greedy steps (teacher-forced)", Total(r, false));
  const LogitComparison m = Total(r, true);
  if (m.positions)
    line(o.mtp_post_norm ? "MTP drafts (post-norm hidden)" : "MTP drafts (pre-norm hidden)", m);
  else
    s += "MTP drafts: not compared (" + r.mtp_note + ")\n";
  s += r.ok(o) ? "forge's decoder reproduces the reference\n"
               : "forge's decoder does NOT reproduce the reference\n";
  return s;
}

}  // namespace forge::verify::spec
