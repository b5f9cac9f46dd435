// `forge graft`, `forge strip-mtp`, `forge fix-config` (graft/ builds the plans and writes them).
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "forge/base/thread_pool.h"
#include "forge/cli/card_output.h"
#include "forge/cli/commands.h"
#include "verify/manifest.h"
#include "forge/cli/output.h"
#include "forge/cli/version.h"
#include "forge/plan/writer.h"
#include "graft/graft.h"
#include "graft/head_surgery.h"

namespace forge::cli {
namespace {

struct GraftCliOptions {
  std::string src, base, out, layout, mtp_policy = "skip-fc", match = "mlx-gpu";
  bool sidecar = false, link = false, allow_mismatch = false, dry_run = false, force = false;
  unsigned threads = 0;
  CommonFlags flags;
  CardFlag card;
};

nlohmann::json FitJson(const graft::FitReport& f) {
  nlohmann::json largest = nlohmann::json::array();
  for (const auto& [n, d] : f.lineage.largest) largest.push_back({{"tensor", n}, {"relative_l2", d}});
  return {{"refusals", f.refusals},
          {"notes", f.notes},
          {"lineage",
           {{"sampled_tensors", f.lineage.sampled},
            {"common_trunk_tensors", f.lineage.common},
            {"median_relative_l2", f.lineage.median_relative_l2},
            {"max_relative_l2", f.lineage.max_relative_l2},
            {"verdict", f.lineage.verdict},
            {"largest", largest}}}};
}

int RunGraft(const GraftCliOptions& c) {
  auto src = OpenInput(c.src);
  if (!src.ok()) return ReportError(src.status(), c.flags);
  auto base = OpenInput(c.base);
  if (!base.ok()) return ReportError(base.status(), c.flags);
  graft::GraftOptions o;
  if (c.sidecar && !c.layout.empty() && c.layout != "mtplx") {
    return ReportError(
        Status::Error(ExitCode::kUsage,
                      "--sidecar is --layout mtplx: it cannot be combined with --layout " + c.layout),
        c.flags);
  }
  if (c.sidecar) o.layout = graft::RuntimeLayout::kMtplx;
  if (!c.layout.empty()) o.layout = graft::ParseRuntimeLayout(c.layout);
  o.allow_lineage_mismatch = c.allow_mismatch;
  o.mtp_policy = c.mtp_policy;
  o.rules = c.match == "mlx-cpu" ? quant::Rules::kMlxCpu : quant::Rules::kMlxGpu;
  o.forge_version = VersionString();
  auto g = graft::BuildGraftPlan(**src, **base, o);
  if (!g.ok()) return ReportError(g.status(), c.flags);

  nlohmann::json j = {{"source_format", g->src_format},
                      {"donor_format", g->base_format},
                      {"layout", graft::RuntimeLayoutName(g->layout)},
                      {"fit", FitJson(g->fit)},
                      {"notes", g->notes},
                      {"head", g->head}};
  for (const auto& f : g->out.layout.carried) j["files"]["carried"].push_back(f.name);
  for (const auto& s : g->out.layout.new_shards)
    j["files"]["written"].push_back(
        {{"file", s.file_name}, {"bytes", s.file_size()}, {"tensors", s.layout.size()}});
  j["config_changes"] = nlohmann::json::diff((*src)->config()->raw, g->config);
  if (c.dry_run) {
    j["dry_run"] = true;
    j["exit_code"] = 0;
    if (c.flags.json) {
      PrintJson(j);
      return 0;
    }
    std::string o2 =
        fmt::format("graft {} (donor {}) -> {}, dry run: nothing written\nSRC {} / BASE {}, layout {}\n",
                    c.src, c.base, c.out, g->src_format, g->base_format, graft::RuntimeLayoutName(g->layout));
    for (const auto& n : g->fit.notes) o2 += "  fit: " + n + "\n";
    const auto& L = g->fit.lineage;
    o2 +=
        fmt::format("  lineage: {} (median relative L2 {:.4f}, max {:.4f}, {} of {} trunk tensors sampled)\n",
                    L.verdict, L.median_relative_l2, L.max_relative_l2, L.sampled, L.common);
    for (const auto& n : g->notes) o2 += "  note: " + n + "\n";
    o2 += fmt::format("head: {} tensors\n", g->head.size());
    for (const auto& [name, how] : g->head) o2 += fmt::format("  {} = {}\n", name, how);
    o2 += "files:\n";
    for (const auto& f : g->out.layout.carried) o2 += fmt::format("  carry   {}\n", f.name);
    for (const auto& s : g->out.layout.new_shards)
      o2 += fmt::format("  write   {}  {} bytes  {} tensors\n", s.file_name, s.file_size(), s.layout.size());
    o2 += "config.json changes:\n";
    for (const auto& op : j["config_changes"]) {
      o2 += fmt::format("  {} {}{}\n", op["op"].get<std::string>(), op["path"].get<std::string>(),
                        op.contains("value") ? " = " + op["value"].dump() : "");
    }
    std::fputs(o2.c_str(), stdout);
    return 0;
  }
  graft::SurgeryWrite w;
  w.link = c.link;
  w.force = c.force;
  w.progress = c.flags.show_progress();
  w.threads = c.threads;
  w.also_reads = {base->get()};
  w.replaced_files[graft::kMtplxRuntimeFile] =
      g->runtime_contract ? std::optional<std::string>(plan::DumpJson(*g->runtime_contract)) : std::nullopt;
  if (!c.card.no_card) {
    auto facts = NewCardFacts("graft", **src, c.src, c.out);
    facts->lineage.push_back({"MTP head donor", c.base, card::RepoIdOf(**base)});
    facts->layout = std::string(graft::RuntimeLayoutName(g->layout));
    facts->threads = c.threads;
    facts->head_policy = DescribeMtpPolicy(c.mtp_policy, (*src)->HasQuantizedTensors());
    facts->done.push_back(fmt::format("transplanted the MTP head of the donor ({} tensors) into the source; every source "
                                      "trunk tensor carried byte for byte and proven identical before the commit",
                                      g->head.size()));
    facts->done.push_back(fmt::format("proof of fit passed{}; lineage: {} (median relative L2 {:.4f} over {} trunk tensors)",
                                      g->fit.ok() ? "" : " only with --allow-lineage-mismatch", g->fit.lineage.verdict,
                                      g->fit.lineage.median_relative_l2, g->fit.lineage.sampled));
    for (const auto& n : g->notes) facts->done.push_back(n);
    const std::string src_dir = (*src)->dir();
    w.replaced_files[verify::kCardName] = std::nullopt;  // SRC's card goes below forge's
    w.after_manifest = [facts, src_dir](const std::string& staged) { return card::WriteCard(*facts, staged, src_dir); };
  }
  auto rep = graft::WriteSurgery(**src, g->out, g->config, c.out, w);
  if (!rep.ok()) return ReportError(rep.status(), c.flags);
  j["write"] = *rep;
  j["exit_code"] = 0;
  if (c.flags.json) {
    PrintJson(j);
  } else {
    for (const auto& n : g->notes) std::printf("%s\n", n.c_str());
    std::printf("lineage: %s (median relative L2 %.4f)\n", g->fit.lineage.verdict.c_str(),
                g->fit.lineage.median_relative_l2);
    const auto& checks = (*rep)["checks"];
    std::printf(
        "wrote %s: %zu head tensors; %d trunk files %s, %llu bytes written in %.2f s; trunk check: %d "
        "tensors identical"
        " (%d by hard link); manifest written\n",
        (*rep)["out"].get<std::string>().c_str(), g->head.size(),
        static_cast<int>((*rep)["carried_files"].get<size_t>()), c.link ? "linked" : "copied",
        static_cast<unsigned long long>((*rep)["bytes_written"].get<uint64_t>()),
        (*rep)["seconds"].get<double>(), checks.value("trunk_tensors_identical", 0),
        checks.value("trunk_tensors_linked", 0));
    if (checks.value("manifest_files_size_only", 0) > 0) {
      std::printf(
          "manifest: %d linked trunk files recorded by size (the source has no forge manifest to inherit "
          "hashes from); `forge manifest %s` hashes them\n",
          checks.value("manifest_files_size_only", 0), (*rep)["out"].get<std::string>().c_str());
    }
  }
  return 0;
}

struct SurgeryCliOptions {
  std::string src, out;
  bool link = false, force = false;
  CommonFlags flags;
};

int RunSurgery(const SurgeryCliOptions& c, bool strip) {
  auto src = OpenInput(c.src);
  if (!src.ok()) return ReportError(src.status(), c.flags);
  auto s = strip ? graft::BuildStripPlan(**src) : graft::BuildFixConfigPlan(**src);
  if (!s.ok()) return ReportError(s.status(), c.flags);
  graft::SurgeryWrite w;
  w.link = c.link;
  w.force = c.force;
  w.progress = c.flags.show_progress();
  if (strip) w.replaced_files[graft::kMtplxRuntimeFile] = std::nullopt;  // no head, no contract for one
  auto rep = graft::WriteSurgery(**src, s->out, s->config, c.out, w);
  if (!rep.ok()) return ReportError(rep.status(), c.flags);
  if (c.flags.json) {
    PrintJson({{"notes", s->notes}, {"write", *rep}, {"exit_code", 0}});
  } else {
    for (const auto& n : s->notes) std::printf("%s\n", n.c_str());
    std::printf("wrote %s\n", (*rep)["out"].get<std::string>().c_str());
  }
  return 0;
}

}  // namespace

void SetupGraft(CLI::App& app, Action* run) {
  auto c = std::make_shared<GraftCliOptions>();
  auto* cmd = app.add_subcommand(
      "graft", "Transplant BASE's MTP head into SRC (a fine-tune without one), with proof of fit");
  cmd->add_option("--src", c->src, "The fine-tune (HF raw or MLX, float or quantized)")->required();
  cmd->add_option("--mtp-from", c->base, "The base model whose MTP head is taken")->required();
  cmd->add_option("--out", c->out, "Output directory (must not exist unless --force)")->required();
  cmd->add_option(
         "--layout", c->layout,
         "Runtime layout (docs/LAYOUTS.md) in SRC's family: omlx (default for MLX), mtplx (mtp.safetensors "
         "sidecar + mtplx_runtime.json), mlx-lm (no vision tower) or hf (HF raw SRC)")
      ->check(CLI::IsMember({"omlx", "mtplx", "mlx-lm", "hf"}));
  cmd->add_flag("--sidecar", c->sidecar,
                "Same as --layout mtplx (the head in mtp.safetensors, as MTPLX reads it)");
  cmd->add_option("--mtp-policy", c->mtp_policy,
                  "skip-fc (default), keep, match or MODE:BITS:GROUP (as forge quantize)");
  cmd->add_option("--match", c->match,
                  "Rounding rules when the head is quantized: mlx-gpu (default) or mlx-cpu")
      ->check(CLI::IsMember({"mlx-gpu", "mlx-cpu"}));
  cmd->add_flag("--link", c->link, "Hard-link (or reflink) unchanged shards instead of copying them");
  cmd->add_flag(
      "--allow-lineage-mismatch", c->allow_mismatch,
      "WARNING: graft even when geometry, tokenizer or trunk tensors disagree (the head will not fit)");
  cmd->add_option("--threads", c->threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(0u, kMaxThreads));
  cmd->add_flag("--dry-run", c->dry_run,
                "Show the fit report, head transforms, files and config changes only");
  cmd->add_flag("--force", c->force, "Replace an existing output directory");
  c->flags.Add(cmd);
  c->card.Add(cmd);
  cmd->callback([run, c] { *run = [c] { return RunGraft(*c); }; });

  for (bool strip : {true, false}) {
    auto s = std::make_shared<SurgeryCliOptions>();
    auto* sc = app.add_subcommand(
        strip ? "strip-mtp" : "fix-config",
        strip ? "Drop the MTP head and set mtp_num_hidden_layers to 0"
              : "Make mtp_num_hidden_layers agree with the tensors (the fix inspect proposes)");
    sc->add_option("--src", s->src, "Checkpoint directory")->required();
    sc->add_option("--out", s->out, "Output directory (sources are never modified)")->required();
    sc->add_flag("--link", s->link, "Hard-link (or reflink) unchanged shards instead of copying them");
    sc->add_flag("--force", s->force, "Replace an existing output directory");
    s->flags.Add(sc);
    sc->callback([run, s, strip] { *run = [s, strip] { return RunSurgery(*s, strip); }; });
  }
}

}  // namespace forge::cli
