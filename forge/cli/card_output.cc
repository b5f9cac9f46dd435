#include "forge/cli/card_output.h"

#include <filesystem>

#include "forge/base/fs_util.h"
#include "forge/cli/version.h"
#include "verify/manifest.h"

namespace forge::cli {
namespace fs = std::filesystem;

namespace {
std::string& CommandLineStorage() {
  static std::string line;
  return line;
}
}  // namespace

void CardFlag::Add(CLI::App* cmd) {
  cmd->add_flag(
      "--no-card", no_card,
      "Write no model card (README.md) and, for convert/quantize, no forge-manifest.json; SRC's README.md "
      "is carried as it is");
}

void SetCommandLine(int argc, char** argv) {
  std::string line = "forge";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    if (!plain) {
      std::string q = "'";
      for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      a = q + "'";
    }
    line += " " + a;
  }
  CommandLineStorage() = line;
}

const std::string& CommandLine() { return CommandLineStorage(); }

std::shared_ptr<card::CardFacts> NewCardFacts(const std::string& command, const Checkpoint& src,
                                              const std::string& src_arg, const std::string& out_dir) {
  auto f = std::make_shared<card::CardFacts>();
  f->command = command;
  f->command_line = CommandLine().empty() ? "forge " + command : CommandLine();
  f->forge_version = VersionString();
  f->out_dir = out_dir;
  f->lineage.push_back({"source", src_arg, card::RepoIdOf(src)});
  return f;
}

std::string DescribeMtpPolicy(const std::string& policy, bool quantized) {
  if (!quantized || policy == "keep") return "`" + policy + "`: the head is float";
  if (policy == "skip-fc") return "`skip-fc`: quantized like the trunk, `mtp.fc` and the norms float";
  if (policy == "match") return "`match`: quantized exactly like the trunk, `mtp.fc` included";
  return "`" + policy + "`: every head linear at these parameters";
}

void AddManifestAndCard(plan::WriteOptions* w, std::shared_ptr<const card::CardFacts> facts,
                        const std::string& src_dir) {
  std::erase_if(w->copy_files, [](const auto& f) { return f.second == verify::kCardName; });
  auto before = std::move(w->before_commit);
  const unsigned threads = w->threads;
  w->before_commit = [before, facts, src_dir, threads](const std::string& staged) -> Status {
    if (before) FORGE_RETURN_IF_ERROR(before(staged));
    FORGE_ASSIGN_OR_RETURN(nlohmann::json manifest, verify::BuildManifest(staged, {}, {}, threads, /*hash_tensors=*/false));
    FORGE_RETURN_IF_ERROR(
        WriteTextFile((fs::path(staged) / verify::kManifestName).string(), manifest.dump(2) + "\n"));
    return card::WriteCard(*facts, staged, src_dir);
  };
}

}  // namespace forge::cli
