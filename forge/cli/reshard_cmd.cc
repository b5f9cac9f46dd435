// `forge reshard`: rewrite a checkpoint with another maximum shard size (the identity plan through the
// streaming writer); tensors, config and auxiliary files are carried over unchanged.
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "forge/ckpt/checkpoint.h"
#include "forge/base/thread_pool.h"
#include "forge/cli/commands.h"
#include "forge/cli/output.h"
#include "forge/plan/writer.h"

namespace forge::cli {
namespace {

struct ReshardOptions {
  std::string src, out, max_shard_size = "5GB";
  unsigned threads = 0;
  bool force = false, dry_run = false;
  CommonFlags flags;
};

int RunReshard(const ReshardOptions& o) {
  auto max_size = plan::ParseByteSize(o.max_shard_size);
  if (!max_size.ok()) return ReportError(max_size.status(), o.flags);
  auto ckpt = OpenInput(o.src);
  if (!ckpt.ok()) return ReportError(ckpt.status(), o.flags);
  const Checkpoint& c = **ckpt;
  auto p = plan::IdentityPlan(c);
  if (!p.ok()) return ReportError(p.status(), o.flags);

  // Keep the source's safetensors metadata format (pt for HF, mlx for MLX).
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  auto fmt_it = c.shards().front()->header().metadata.find("format");
  if (fmt_it != c.shards().front()->header().metadata.end()) metadata["format"] = fmt_it->second;

  if (o.dry_run) {
    auto shards = plan::LayoutShards(*p, *max_size, metadata);
    if (!shards.ok()) return ReportError(shards.status(), o.flags);
    nlohmann::json j = {{"dry_run", true}, {"tensors", p->tensors.size()}, {"tensor_bytes", p->total_bytes()}};
    for (const auto& s : *shards) j["shards"].push_back({{"file", s.file_name}, {"bytes", s.file_size()}, {"tensors", s.layout.size()}});
    j["exit_code"] = 0;
    if (o.flags.json) PrintJson(j);
    else {
      std::printf("would write %zu tensors (%llu bytes) into %zu shard(s):\n", p->tensors.size(),
                  static_cast<unsigned long long>(p->total_bytes()), shards->size());
      for (const auto& s : *shards) std::printf("  %s  %llu bytes  %zu tensors\n", s.file_name.c_str(),
                                                static_cast<unsigned long long>(s.file_size()), s.layout.size());
    }
    return 0;
  }

  plan::WriteOptions w = OutputOptions(c, o.flags, o.force, o.threads, *max_size);
  w.metadata = metadata;
  if (c.config()) w.config = c.config()->raw;
  auto report = plan::WritePlan(*p, o.out, w);
  if (!report.ok()) return ReportError(report.status(), o.flags);
  if (o.flags.json) {
    nlohmann::json j = plan::WriteReportJson(*report);
    j["exit_code"] = 0;
    PrintJson(j);
  } else {
    std::printf("wrote %s: %zu shard(s), %llu bytes in %.2f s\n", report->out_dir.c_str(), report->shards.size(),
                static_cast<unsigned long long>(report->file_bytes), report->seconds);
  }
  return 0;
}

}  // namespace

void SetupReshard(CLI::App& app, Action* run) {
  auto opts = std::make_shared<ReshardOptions>();
  auto* cmd = app.add_subcommand("reshard", "Rewrite a checkpoint with another shard size (tensors unchanged)");
  cmd->add_option("--src", opts->src, "Source checkpoint directory")->required();
  cmd->add_option("--out", opts->out, "Output directory (must not exist unless --force)")->required();
  cmd->add_option("--max-shard-size", opts->max_shard_size, "Largest shard, e.g. 5GB, 500MB, 2GiB (default 5GB)");
  cmd->add_option("--threads", opts->threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(0u, kMaxThreads));
  cmd->add_flag("--force", opts->force, "Replace an existing output directory");
  cmd->add_flag("--dry-run", opts->dry_run, "Print the shard plan without writing");
  opts->flags.Add(cmd);
  cmd->callback([run, opts] { *run = [opts] { return RunReshard(*opts); }; });
}

}  // namespace forge::cli
