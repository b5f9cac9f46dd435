// `forge manifest DIR` and `forge verify --manifest DIR | --trunk-of SRC DIR | --identity --model DIR`.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "forge/base/fs_util.h"
#include "forge/base/thread_pool.h"
#include "forge/cli/commands.h"
#include "forge/cli/identity_cmd.h"
#include "forge/cli/output.h"
#include "forge/cli/reference_cmd.h"
#include "verify/manifest.h"
#include "verify/trunk_check.h"

namespace forge::cli {
namespace {

struct ManifestOptions {
  std::string dir;
  CommonFlags flags;
};

struct VerifyOptions {
  std::string trunk_of, dir;
  bool manifest = false, fast = false, size_only = false, identity = false;
  IdentityOptions id;
  std::string reference;
  double tolerance = 1e-3, tie_gap = 1e-4;
  CommonFlags flags;
};

int RunManifest(const ManifestOptions& o) {
  auto m = verify::BuildManifest(o.dir);
  if (!m.ok()) return ReportError(m.status(), o.flags);
  const std::string path = (std::filesystem::path(o.dir) / verify::kManifestName).string();
  Status st = WriteFileAtomically(path, m->dump(2) + "\n");
  if (!st.ok()) return ReportError(st, o.flags);
  if (o.flags.json)
    PrintJson({{"manifest", path},
               {"files", (*m)["files"].size()},
               {"tensors", (*m)["tensors"].size()},
               {"exit_code", 0}});
  else
    std::printf("wrote %s: %zu files, %zu tensors\n", path.c_str(), (*m)["files"].size(),
                (*m)["tensors"].size());
  return 0;
}

int Report(const std::vector<std::string>& mismatches, nlohmann::json j, const CommonFlags& flags,
           const std::string& what) {
  const int code = mismatches.empty() ? 0 : static_cast<int>(ExitCode::kVerifyFailed);
  j["ok"] = mismatches.empty();
  j["mismatches"] = mismatches;
  j["exit_code"] = code;
  if (flags.json) {
    PrintJson(j);
  } else if (mismatches.empty()) {
    std::printf("%s: OK\n", what.c_str());
  } else {
    std::printf("%s: %zu mismatches\n", what.c_str(), mismatches.size());
    for (size_t i = 0; i < mismatches.size() && i < 20; ++i) std::printf("  %s\n", mismatches[i].c_str());
  }
  return code;
}

int RunVerify(const VerifyOptions& o) {
  if (o.id.record && !o.identity)
    return ReportError(Status::Error(ExitCode::kUsage, "--record records a --identity run: give --identity"), o.flags);
  if (!o.reference.empty()) {
    if (o.identity)
      return ReportError(Status::Error(ExitCode::kUsage, "give --identity or --reference, not both"), o.flags);
    ReferenceCheckOptions r;
    r.model = o.id.model.empty() ? o.dir : o.id.model;
    if (r.model.empty())
      return ReportError(Status::Error(ExitCode::kUsage, "verify --reference needs --model DIR"), o.flags);
    r.reference = o.reference;
    r.mtp_hidden = o.id.mtp_hidden;
    r.tolerance = o.tolerance;
    r.tie_gap = o.tie_gap;
    r.threads = o.id.threads;
    return RunReferenceCheck(r, o.flags);
  }
  if (o.identity) {
    IdentityOptions id = o.id;
    if (id.model.empty()) id.model = o.dir;
    if (id.model.empty())
      return ReportError(Status::Error(ExitCode::kUsage, "verify --identity needs --model DIR"), o.flags);
    return RunIdentity(id, o.flags);
  }
  if (o.dir.empty())
    return ReportError(Status::Error(ExitCode::kUsage, "verify needs a checkpoint directory"), o.flags);
  if (o.manifest) {
    auto c = verify::CheckManifest(o.dir, o.fast);
    if (!c.ok()) return ReportError(c.status(), o.flags);
    // A file recorded by size alone (graft --link from a source without a manifest) has not had its bytes
    // checked: a same-size tampered shard would pass. That is a failure unless --size-only accepts it.
    std::vector<std::string> problems = c->mismatches;
    if (!o.size_only) {
      for (const auto& f : c->size_only_files) {
        problems.push_back(fmt::format("{}: recorded by size only, its bytes are not verified (`forge manifest {}` "
                                       "hashes it; --size-only accepts a size check)",
                                       f, o.dir));
      }
    }
    return Report(problems,
                  {{"files_checked", c->files_checked}, {"tensors_checked", c->tensors_checked},
                   {"files_size_only", c->size_only()}, {"size_only_accepted", o.size_only}},
                  o.flags,
                  fmt::format("manifest {}{}{}", o.dir, o.fast ? " (fast: sizes and crc32)" : "",
                              c->size_only() && o.size_only
                                  ? fmt::format(" ({} linked files checked by size only, as --size-only asks)", c->size_only())
                                  : ""));
  }
  if (!o.trunk_of.empty()) {
    auto src = OpenInput(o.trunk_of);
    if (!src.ok()) return ReportError(src.status(), o.flags);
    auto out = OpenInput(o.dir);
    if (!out.ok()) return ReportError(out.status(), o.flags);
    verify::TrunkCheck t = verify::CheckTrunk(**src, **out);
    return Report(t.mismatches,
                  {{"trunk_tensors_compared", t.compared}, {"bytes_compared", t.bytes_compared}}, o.flags,
                  fmt::format("trunk of {} in {}", o.trunk_of, o.dir));
  }
  return ReportError(
      Status::Error(ExitCode::kUsage,
                    "verify needs --manifest DIR, --trunk-of SRC DIR, --identity --model DIR or --reference REF --model DIR"),
      o.flags);
}

}  // namespace

void SetupVerify(CLI::App& app, Action* run) {
  auto m = std::make_shared<ManifestOptions>();
  auto* mc = app.add_subcommand("manifest",
                                "Write forge-manifest.json: sha1 of every tensor and file, crc32 per file");
  mc->add_option("DIR", m->dir, "Checkpoint directory")->required();
  m->flags.Add(mc);
  mc->callback([run, m] { *run = [m] { return RunManifest(*m); }; });

  auto v = std::make_shared<VerifyOptions>();
  auto* vc =
      app.add_subcommand("verify",
                         "Check a checkpoint: --manifest DIR, --trunk-of SRC DIR, or --identity --model DIR "
                         "(MTP speculative decoding == greedy); exit 5 on mismatch");
  vc->add_flag("--manifest", v->manifest, "Re-check DIR against its forge-manifest.json");
  vc->add_flag("--fast", v->fast, "With --manifest: sizes and crc32 only");
  vc->add_flag("--size-only", v->size_only,
               "With --manifest: accept files the manifest records by size alone (linked without a hash); "
               "without it they fail the check");
  vc->add_option("--trunk-of", v->trunk_of, "Prove every trunk tensor of DIR is byte-identical to SRC's");
  vc->add_option("DIR", v->dir, "The checkpoint to check");
  vc->add_flag(
      "--identity", v->identity,
      "Replay plain and MTP speculative greedy decoding on the CPU reference decoder; prove they emit the "
      "same tokens and measure acceptance (exit 5 on divergence, 2 without an MTP head)");
  vc->add_option("--model", v->id.model,
                 "With --identity or --reference: the checkpoint (HF or MLX, float or quantized)");
  vc->add_option("--reference", v->reference,
                 "Compare the reference decoder, teacher-forced, with another implementation's logits: "
                 "REF.tokens.json (cases of prompt + greedy tokens) and the logits file it names (exit 5 when a "
                 "step's or an MTP draft's argmax differs outside a near-tie or its logits are off)");
  vc->add_option("--tolerance", v->tolerance,
                 "With --reference: max |logit - reference| as a fraction of the step's logit range (1e-3)");
  vc->add_option("--tie-gap", v->tie_gap,
                 "With --reference: an argmax may differ where the reference's top-2 gap is below this (1e-4)");
  vc->add_option("--prompt-tokens", v->id.prompt_tokens,
                 "With --identity: one prompt as token ids, e.g. 1,2,3");
  vc->add_option("--prompts", v->id.prompts_file,
                 "With --identity: JSONL file, one {\"prompt\": TEXT} or {\"tokens\": [..]} per line");
  vc->add_option("--prompt", v->id.prompt_text, "With --identity: one prompt as text (needs tokenizer.json)");
  vc->add_option("--max-tokens", v->id.max_tokens, "With --identity: new tokens per prompt (default 64)");
  vc->add_option("--depth", v->id.depth, "With --identity: drafts per verify round, 1..4 (default 1)");
  vc->add_option(
      "--mtp-hidden", v->id.mtp_hidden,
      "With --identity or --reference: hidden fed to the MTP head: post-norm (default; vLLM, SGLang, mlx-vlm) or pre-norm "
      "(mlx-lm's MTP branch)");
  vc->add_option("--threads", v->id.threads, "With --identity or --reference: worker threads (default: all cores)")
      ->check(CLI::Range(0u, kMaxThreads));
  vc->add_flag("--ignore-eos", v->id.ignore_eos, "With --identity: do not stop at the end-of-sequence token");
  vc->add_flag("--record", v->id.record,
               "With --identity: record the result in MODEL/forge-verify.json (per depth) and in the verification "
               "section of MODEL's forge model card (the only write into MODEL; no weight is touched)");
  v->flags.Add(vc);
  vc->callback([run, v] { *run = [v] { return RunVerify(*v); }; });
}

}  // namespace forge::cli
