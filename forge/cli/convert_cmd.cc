// `forge convert`: HF raw <-> MLX layout (graft/convert.h does the work; this file parses and reports).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "forge/base/fs_util.h"
#include "forge/base/thread_pool.h"
#include "forge/cli/card_output.h"
#include "forge/cli/commands.h"
#include "forge/cli/output.h"
#include "forge/cli/version.h"
#include "forge/plan/plan_diff.h"
#include "forge/plan/writer.h"
#include "graft/convert.h"
#include "graft/trunk_layout.h"

namespace forge::cli {
namespace {

struct ConvertCliOptions {
  std::string src, out, to = "mlx", layout, dtype, fix_norms, expert_layout, mtp_expert_layout,
                        max_shard_size = "5GB";
  bool drop_mtp = false, drop_vision = false, dry_run = false, force = false, allow_overflow = false;
  unsigned threads = 0;
  CommonFlags flags;
  CardFlag card;
};

constexpr uint64_t kMemoryBudget = 1ull << 30;

Result<graft::ConvertOptions> ToOptions(const ConvertCliOptions& c) {
  graft::ConvertOptions o;
  o.to = c.to == "hf" ? graft::TargetFormat::kHf : graft::TargetFormat::kMlx;
  o.dtype = ParseFloatDType(c.dtype);
  o.allow_overflow = c.allow_overflow;
  o.drop_mtp = c.drop_mtp;
  o.drop_vision = c.drop_vision;
  if (!c.fix_norms.empty()) {
    o.fix_norms =
        c.fix_norms == "shifted" ? inspect::NormConvention::kShifted : inspect::NormConvention::kZeroCentered;
  }
  if (!c.layout.empty()) o.layout = graft::ParseRuntimeLayout(c.layout);
  o.forge_version = VersionString();
  if (!c.expert_layout.empty()) o.hf_backbone_layout = graft::ParseHfExpertLayout(c.expert_layout);
  if (!c.mtp_expert_layout.empty()) o.hf_mtp_layout = graft::ParseHfExpertLayout(c.mtp_expert_layout);
  if (o.layout) o.to = graft::IsMlxLayout(*o.layout) ? graft::TargetFormat::kMlx : graft::TargetFormat::kHf;
  if ((o.hf_backbone_layout || o.hf_mtp_layout) && o.to != graft::TargetFormat::kHf) {
    return Status::Error(ExitCode::kUsage,
                         "--expert-layout/--mtp-expert-layout apply to --to hf / --layout hf only");
  }
  return o;
}

nlohmann::json DryRunJson(const graft::ConvertPlan& cp, const plan::PlanDiff& d,
                          const std::vector<plan::ShardPlan>& shards, const nlohmann::json& config_patch,
                          uint64_t peak) {
  nlohmann::json j;
  j["dry_run"] = true;
  j["source_format"] = cp.source_format;
  j["norms"] = {{"backbone", inspect::NormConventionName(cp.norms.trunk)},
                {"mtp_layer_norms", inspect::NormConventionName(cp.norms.mtp_layers)},
                {"mtp_head_norms", inspect::NormConventionName(cp.norms.mtp_head)},
                {"evidence", cp.norms.evidence},
                {"deltas",
                 {{"backbone", cp.deltas.backbone},
                  {"mtp_layers", cp.deltas.mtp_layers},
                  {"mtp_head", cp.deltas.mtp_head}}}};
  j["already_in_target"] = cp.already_in_target;
  j["notes"] = cp.notes;
  j["unchanged"] = d.unchanged;
  for (const auto& [from, to] : d.renamed) j["renamed"].push_back({{"from", from}, {"to", to}});
  for (const auto& [name, how] : d.changed) j["changed"].push_back({{"name", name}, {"transform", how}});
  j["added"] = d.added;
  j["dropped"] = d.dropped;
  j["output_tensors"] = cp.plan.tensors.size();
  j["output_bytes"] = cp.plan.total_bytes();
  for (const auto& s : shards)
    j["shards"].push_back({{"file", s.file_name}, {"bytes", s.file_size()}, {"tensors", s.layout.size()}});
  j["estimated_peak_memory_bytes"] = peak;
  j["config_changes"] = config_patch;
  j["exit_code"] = 0;
  return j;
}

void PrintDryRunText(const ConvertCliOptions& c, const graft::ConvertPlan& cp, const plan::PlanDiff& d,
                     const std::vector<plan::ShardPlan>& shards, const nlohmann::json& config_patch,
                     uint64_t peak) {
  std::string o = fmt::format("convert {} -> {} (to {}), dry run: nothing written\n", c.src, c.out, c.to);
  o += fmt::format("source: {}, norms: {}\n", cp.source_format, inspect::DescribeNormGroups(cp.norms));
  for (const auto& e : cp.norms.evidence) o += "  evidence: " + e + "\n";
  for (const auto& n : cp.notes) o += "  decision: " + n + "\n";
  o += fmt::format("tensors: {} out ({} unchanged, {} renamed, {} changed, {} added), {} dropped\n",
                   cp.plan.tensors.size(), d.unchanged.size(), d.renamed.size(), d.changed.size(),
                   d.added.size(), d.dropped.size());
  for (size_t i = 0; i < d.renamed.size() && i < 4; ++i)
    o += fmt::format("  renamed  {} -> {}\n", d.renamed[i].first, d.renamed[i].second);
  if (d.renamed.size() > 4)
    o += fmt::format("  renamed  ... {} more (--json lists all)\n", d.renamed.size() - 4);
  for (const auto& [name, how] : d.changed) o += fmt::format("  changed  {} = {}\n", name, how);
  for (const auto& n : d.added) o += fmt::format("  added    {}\n", n);
  for (const auto& n : d.dropped) o += fmt::format("  dropped  {}\n", n);
  o += fmt::format("output: {} bytes of tensors in {} shard(s)\n", cp.plan.total_bytes(), shards.size());
  for (const auto& s : shards)
    o += fmt::format("  {}  {} bytes  {} tensors\n", s.file_name, s.file_size(), s.layout.size());
  o += fmt::format("estimated peak memory: {:.1f} MB\n", static_cast<double>(peak) / 1e6);
  o += "config.json changes:\n";
  if (config_patch.empty()) o += "  none\n";
  for (const auto& op : config_patch) {
    o += fmt::format("  {} {}{}\n", op["op"].get<std::string>(), op["path"].get<std::string>(),
                     op.contains("value") ? " = " + op["value"].dump() : "");
  }
  std::fputs(o.c_str(), stdout);
}

// The plan's shards, plus the layout's sidecar (outside the index) and runtime contract. A contract the
// source carried is never copied: only the layout written states one.
Result<plan::WriteReport> WriteConverted(const graft::ConvertPlan& cp, const std::string& out,
                                         plan::WriteOptions w) {
  std::erase_if(w.copy_files, [](const auto& f) { return f.second == graft::kMtplxRuntimeFile; });
  if (cp.runtime.runtime_contract) {
    const std::string text = plan::DumpJson(*cp.runtime.runtime_contract);
    auto after = std::move(w.before_commit);  // the manifest and card list the contract: it comes first
    w.before_commit = [text, after](const std::string& staging) -> Status {
      FORGE_RETURN_IF_ERROR(WriteTextFile((std::filesystem::path(staging) / graft::kMtplxRuntimeFile).string(), text));
      return after ? after(staging) : Status();
    };
  }
  if (cp.runtime.sidecar_tensors.empty()) return plan::WritePlan(cp.plan, out, w);
  // The trunk first (its shards index the plan from 0), then the sidecar, outside the index.
  const auto in_sidecar = [&](const plan::PlannedTensor& t) {
    return cp.runtime.sidecar_tensors.count(t.name) > 0;
  };
  plan::Plan all;
  for (const auto& t : cp.plan.tensors)
    if (!in_sidecar(t)) all.tensors.push_back(t);
  plan::OutputLayout layout;
  FORGE_ASSIGN_OR_RETURN(layout.new_shards, plan::LayoutShards(all, w.max_shard_size, w.metadata));
  if (layout.new_shards.size() > 1) layout.index = plan::BuildIndex(layout.new_shards);
  std::vector<std::string> head;
  for (const auto& t : cp.plan.tensors) {
    if (!in_sidecar(t)) continue;
    all.tensors.push_back(t);
    head.push_back(t.name);
  }
  FORGE_ASSIGN_OR_RETURN(plan::ShardPlan sidecar,
                         graft::ShardOf(all, head, cp.runtime.sidecar_file, w.metadata));
  layout.new_shards.push_back(std::move(sidecar));
  return plan::WriteLayout(all, layout, out, w, false, nullptr);
}

int RunConvert(const ConvertCliOptions& c) {
  auto max_size = plan::ParseByteSize(c.max_shard_size);
  if (!max_size.ok()) return ReportError(max_size.status(), c.flags);
  auto opts = ToOptions(c);
  if (!opts.ok()) return ReportError(opts.status(), c.flags);
  auto ckpt = OpenInput(c.src);
  if (!ckpt.ok()) return ReportError(ckpt.status(), c.flags);
  auto cp = graft::BuildConvertPlan(**ckpt, *opts);
  if (!cp.ok()) return ReportError(cp.status(), c.flags);

  if (c.dry_run) {
    auto shards = plan::LayoutShards(cp->plan, *max_size, cp->metadata);
    if (!shards.ok()) return ReportError(shards.status(), c.flags);
    plan::PlanDiff diff = plan::DiffPlan(**ckpt, cp->plan);
    nlohmann::json patch = nlohmann::json::diff((*ckpt)->config()->raw, cp->config);
    const unsigned threads = c.threads ? c.threads : DefaultThreadCount();
    uint64_t peak = plan::EstimatePeakBytes(cp->plan, threads, kMemoryBudget);
    if (c.flags.json)
      PrintJson(DryRunJson(*cp, diff, *shards, patch, peak));
    else
      PrintDryRunText(c, *cp, diff, *shards, patch, peak);
    return 0;
  }

  plan::WriteOptions w = OutputOptions(**ckpt, c.flags, c.force, c.threads, *max_size);
  w.memory_budget = kMemoryBudget;
  w.metadata = cp->metadata;
  w.config = cp->config;
  if (!c.card.no_card) {
    auto facts = NewCardFacts("convert", **ckpt, c.src, c.out);
    facts->layout = !c.layout.empty() ? c.layout : c.to == "hf" ? "hf" : "omlx";
    facts->threads = c.threads;
    facts->done.push_back(fmt::format("converted from {} to the `{}` layout; norms: {}", cp->source_format, facts->layout,
                                      inspect::DescribeNormGroups(cp->norms)));
    for (const auto& n : cp->notes) facts->done.push_back(n);
    AddManifestAndCard(&w, facts, (*ckpt)->dir());
  }
  auto report = WriteConverted(*cp, c.out, std::move(w));
  if (!report.ok()) return ReportError(report.status(), c.flags);
  if (c.flags.json) {
    nlohmann::json j = plan::WriteReportJson(*report);
    j.update({{"to", c.to},
              {"source_format", cp->source_format},
              {"already_in_target", cp->already_in_target},
              {"notes", cp->notes},
              {"tensors", cp->plan.tensors.size()},
              {"exit_code", 0}});
    PrintJson(j);
  } else {
    for (const auto& n : cp->notes) std::printf("%s\n", n.c_str());
    std::printf("wrote %s (%s layout): %zu tensors, %zu shard(s), %llu bytes in %.2f s\n",
                report->out_dir.c_str(), c.to.c_str(), cp->plan.tensors.size(), report->shards.size(),
                static_cast<unsigned long long>(report->file_bytes), report->seconds);
  }
  return 0;
}

}  // namespace

void SetupConvert(CLI::App& app, Action* run) {
  auto c = std::make_shared<ConvertCliOptions>();
  auto* cmd = app.add_subcommand("convert",
                                 "Convert between HF raw and MLX (mlx-vlm) layout, keeping MTP and vision");
  cmd->add_option("--src", c->src, "Source checkpoint directory")->required();
  cmd->add_option("--out", c->out, "Output directory (must not exist unless --force)")->required();
  cmd->add_option("--to", c->to, "Target format: mlx (default) or hf")->check(CLI::IsMember({"mlx", "hf"}));
  cmd->add_option(
         "--layout", c->layout,
         "Runtime layout (docs/LAYOUTS.md): omlx, mtplx (mtp.safetensors sidecar + mtplx_runtime.json), "
         "mlx-lm (no vision tower) or hf; implies --to")
      ->check(CLI::IsMember({"omlx", "mtplx", "mlx-lm", "hf"}));
  cmd->add_option("--dtype", c->dtype, "Cast float weights (A_log is never cast): bf16, f16 (M1/M2), f32")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}));
  cmd->add_flag("--allow-overflow", c->allow_overflow,
                "With --dtype: store values beyond the dtype's range as infinities instead of refusing");
  cmd->add_flag("--drop-mtp", c->drop_mtp, "Leave the MTP head out (config set to 0 MTP layers)");
  cmd->add_flag("--drop-vision", c->drop_vision, "Leave the vision tower and vision_config out");
  cmd->add_option(
         "--fix-norms", c->fix_norms,
         "Bring a mixed-convention checkpoint to this convention (shifted for MLX, zero_centered for HF)")
      ->check(CLI::IsMember({"shifted", "zero_centered", "zero_centred"}));  // the British spelling read too
  cmd->add_option("--expert-layout", c->expert_layout,
                  "--to hf: backbone experts fused (default) or per_expert")
      ->check(CLI::IsMember({"fused", "per_expert", "per-expert"}));
  cmd->add_option("--mtp-expert-layout", c->mtp_expert_layout,
                  "--to hf: MTP experts per_expert (default) or fused")
      ->check(CLI::IsMember({"fused", "per_expert", "per-expert"}));
  cmd->add_option("--max-shard-size", c->max_shard_size, "Largest shard, e.g. 5GB (default), 500MB, 2GiB");
  cmd->add_option("--threads", c->threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(0u, kMaxThreads));
  cmd->add_flag("--dry-run", c->dry_run,
                "Print the plan (renamed/changed/dropped, shards, peak memory, config) only");
  cmd->add_flag("--force", c->force, "Replace an existing output directory");
  c->flags.Add(cmd);
  c->card.Add(cmd);
  cmd->callback([run, c] { *run = [c] { return RunConvert(*c); }; });
}

}  // namespace forge::cli
