// `forge manifest DIR` and `forge verify --manifest DIR | --trunk-of SRC DIR`.
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "forge/base/fs_util.h"
#include "forge/cli/commands.h"
#include "forge/cli/output.h"
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
  bool manifest = false, fast = false;
  CommonFlags flags;
};

int RunManifest(const ManifestOptions& o) {
  auto m = verify::BuildManifest(o.dir);
  if (!m.ok()) return ReportError(m.status(), o.flags);
  const std::string path = (std::filesystem::path(o.dir) / verify::kManifestName).string();
  Status st = WriteTextFile(path, m->dump(2) + "\n");
  if (!st.ok()) return ReportError(st, o.flags);
  if (o.flags.json) PrintJson({{"manifest", path}, {"files", (*m)["files"].size()}, {"tensors", (*m)["tensors"].size()}, {"exit_code", 0}});
  else std::printf("wrote %s: %zu files, %zu tensors\n", path.c_str(), (*m)["files"].size(), (*m)["tensors"].size());
  return 0;
}

int Report(const std::vector<std::string>& mismatches, nlohmann::json j, const CommonFlags& flags, const std::string& what) {
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
  if (o.manifest) {
    auto c = verify::CheckManifest(o.dir, o.fast);
    if (!c.ok()) return ReportError(c.status(), o.flags);
    return Report(c->mismatches, {{"files_checked", c->files_checked}, {"tensors_checked", c->tensors_checked}}, o.flags,
                  fmt::format("manifest {}{}", o.dir, o.fast ? " (fast: sizes and crc32)" : ""));
  }
  if (!o.trunk_of.empty()) {
    auto src = Checkpoint::Open(o.trunk_of);
    if (!src.ok()) return ReportError(src.status(), o.flags);
    auto out = Checkpoint::Open(o.dir);
    if (!out.ok()) return ReportError(out.status(), o.flags);
    verify::TrunkCheck t = verify::CheckTrunk(**src, **out);
    return Report(t.mismatches, {{"trunk_tensors_compared", t.compared}, {"bytes_compared", t.bytes_compared}}, o.flags,
                  fmt::format("trunk of {} in {}", o.trunk_of, o.dir));
  }
  return ReportError(Status::Error(ExitCode::kUsage, "verify needs --manifest DIR or --trunk-of SRC DIR"), o.flags);
}

}  // namespace

void SetupVerify(CLI::App& app, Action* run) {
  auto m = std::make_shared<ManifestOptions>();
  auto* mc = app.add_subcommand("manifest", "Write forge-manifest.json: sha1 of every tensor and file, crc32 per file");
  mc->add_option("DIR", m->dir, "Checkpoint directory")->required();
  m->flags.Add(mc);
  mc->callback([run, m] { *run = [m] { return RunManifest(*m); }; });

  auto v = std::make_shared<VerifyOptions>();
  auto* vc = app.add_subcommand("verify", "Check a checkpoint: --manifest DIR, or --trunk-of SRC DIR (exit 5 on mismatch)");
  vc->add_flag("--manifest", v->manifest, "Re-check DIR against its forge-manifest.json");
  vc->add_flag("--fast", v->fast, "With --manifest: sizes and crc32 only");
  vc->add_option("--trunk-of", v->trunk_of, "Prove every trunk tensor of DIR is byte-identical to SRC's");
  vc->add_option("DIR", v->dir, "The checkpoint to check")->required();
  v->flags.Add(vc);
  vc->callback([run, v] { *run = [v] { return RunVerify(*v); }; });
}

}  // namespace forge::cli
