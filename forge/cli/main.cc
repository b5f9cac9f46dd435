// forge: offline surgery on Qwen3.5/3.6 MTP checkpoints. Parses the command line and maps results to the
// documented exit codes (README "Exit codes"); the commands themselves live in *_cmd.cc.
#include <malloc.h>

#include <cstdio>
#include <new>
#include <string>

#include "forge/base/signals.h"
#include "forge/base/status.h"
#include "forge/cli/card_output.h"
#include "forge/cli/commands.h"
#include "forge/cli/docs_gen.h"
#include "forge/cli/output.h"
#include "forge/cli/version.h"

namespace {

// What escaped every Status, reported as ReportError reports one (one line; the JSON object with --json).
int ReportUncaught(int argc, char** argv, std::string message) {
  for (char& c : message) c = (c == '\n' || c == '\r') ? ' ' : c;
  forge::cli::CommonFlags flags;
  for (int i = 1; i < argc; ++i) flags.json = flags.json || std::string(argv[i]) == "--json";
  return forge::cli::ReportError(forge::Status::Invalid(message), flags);
}

}  // namespace

int main(int argc, char** argv) {
  // Tensors and chunks of megabytes come and go for the whole run, allocated on one writer thread and freed
  // on another. glibc's adaptive threshold would serve them from per-thread heaps that fragment and never
  // shrink (resident memory then grows with the model); a fixed threshold maps each one and unmaps it when freed.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  forge::cli::SetCommandLine(argc, argv);
  forge::InstallSignalHandlers();  // an interrupted write leaves no staging directory and no lock
  CLI::App app{"forge: inspect, convert, quantize, graft and verify Qwen3.5/3.6 MTP checkpoints", "forge"};
  app.set_version_flag("--version", "forge " + forge::cli::VersionString());
  app.require_subcommand(1);
  // Usage errors are one line too (CLI11's default adds "Run with --help ..." on a second).
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return std::string("forge: usage: ") + e.what() + " (see --help)\n"; });
  forge::cli::Action run;
  forge::cli::SetupInspect(app, &run);
  forge::cli::SetupConvert(app, &run);
  forge::cli::SetupQuantize(app, &run);
  forge::cli::SetupGraft(app, &run);
  forge::cli::SetupVerify(app, &run);
  forge::cli::SetupReshard(app, &run);
  // Build-time generators (cmake/install.cmake), hidden from --help.
  if (argc >= 2 && std::string(argv[1]) == "--print-man") {
    std::fputs(forge::cli::ManPage(app, forge::cli::VersionString()).c_str(), stdout);
    return 0;
  }
  if (argc == 3 && std::string(argv[1]) == "--print-completion") {
    const std::string shell = argv[2];
    if (shell != "bash" && shell != "zsh") return static_cast<int>(forge::ExitCode::kUsage);
    std::fputs((shell == "bash" ? forge::cli::BashCompletion(app) : forge::cli::ZshCompletion(app)).c_str(), stdout);
    return 0;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return static_cast<int>(forge::ExitCode::kUsage);
  }
  if (!run) return static_cast<int>(forge::ExitCode::kUsage);
  // Every failure forge foresees is a Status; this is the net under the rest (an allocation the system
  // refuses, a library throwing), so that no input ever ends in an abort and a core dump.
  try {
    return run();
  } catch (const std::bad_alloc&) {
    return ReportUncaught(argc, argv, "out of memory (the system refused an allocation)");
  } catch (const std::exception& e) {
    return ReportUncaught(argc, argv, std::string("internal error: ") + e.what());
  }
}
