// `forge inspect config DIR` and `forge inspect tensors DIR`.
#include <cstdio>
#include <memory>

#include "forge/ckpt/checkpoint.h"
#include "forge/cli/commands.h"
#include "forge/cli/output.h"
#include "inspect/classify.h"
#include "inspect/report_json.h"
#include "inspect/report_text.h"

namespace forge::cli {
namespace {

struct InspectOptions {
  std::string dir;
  CommonFlags flags;
};

int RunInspectConfig(const InspectOptions& o) {
  auto ckpt = OpenInput(o.dir);
  if (!ckpt.ok()) return ReportError(ckpt.status(), o.flags);
  inspect::Report report = inspect::InspectCheckpoint(**ckpt);
  if (o.flags.json) PrintJson(inspect::ReportToJson(report));
  else std::fputs(inspect::ReportToText(report).c_str(), stdout);
  return static_cast<int>(report.exit_code);
}

int RunInspectTensors(const InspectOptions& o) {
  auto ckpt = OpenInput(o.dir);
  if (!ckpt.ok()) return ReportError(ckpt.status(), o.flags);
  auto rows = inspect::BuildTensorTable(**ckpt);
  if (o.flags.json) PrintJson({{"path", o.dir}, {"tensors", inspect::TensorTableToJson(rows)}, {"exit_code", 0}});
  else std::fputs(inspect::TensorTableToText(rows).c_str(), stdout);
  return 0;
}

}  // namespace

void SetupInspect(CLI::App& app, Action* run) {
  auto* inspect = app.add_subcommand("inspect", "Report what a checkpoint is and whether it is MTP-ready");
  inspect->require_subcommand(1);
  auto opts = std::make_shared<InspectOptions>();

  auto* config = inspect->add_subcommand("config", "Format, geometry, layouts, norms, quantization, MTP status + fix.\n"
                                                   "Exit: 0 ready, 2 no MTP, 3 MTP mismatch, 4 structural, 1 unreadable");
  config->add_option("DIR", opts->dir, "Checkpoint directory (or one .safetensors file)")->required();
  opts->flags.Add(config);
  config->callback([run, opts] { *run = [opts] { return RunInspectConfig(*opts); }; });

  auto* tensors = inspect->add_subcommand("tensors", "List every tensor: name, dtype, shape, bytes, shard, quantization");
  tensors->add_option("DIR", opts->dir, "Checkpoint directory (or one .safetensors file)")->required();
  opts->flags.Add(tensors);
  tensors->callback([run, opts] { *run = [opts] { return RunInspectTensors(*opts); }; });
}

}  // namespace forge::cli
