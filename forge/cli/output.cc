#include "forge/cli/output.h"

#include <cstdio>

#include "forge/ckpt/hub_cache.h"

namespace forge::cli {

void CommonFlags::Add(CLI::App* cmd) {
  cmd->add_flag("--json", json, "Print one JSON object on stdout (machine-readable); no progress");
  cmd->add_flag("-q,--quiet", quiet, "No progress output");
}

int ReportError(const Status& st, const CommonFlags& flags) {
  std::fprintf(stderr, "forge: error: %s\n", st.ToString().c_str());
  if (flags.json) {
    nlohmann::json j = {{"error", st.ToString()}, {"exit_code", static_cast<int>(st.code())}};
    if (!st.file().empty()) j["file"] = st.file();
    if (!st.tensor().empty()) j["tensor"] = st.tensor();
    PrintJson(j);
  }
  return static_cast<int>(st.code());
}

std::optional<DType> ParseFloatDType(const std::string& name) {
  if (name == "bf16") return DType::kBF16;
  if (name == "f16") return DType::kF16;
  if (name == "f32") return DType::kF32;
  return std::nullopt;
}

plan::WriteOptions OutputOptions(const Checkpoint& src, const CommonFlags& flags, bool force, unsigned threads,
                                 uint64_t max_shard_size) {
  plan::WriteOptions w = plan::DerivedFrom(src);
  w.max_shard_size = max_shard_size;
  w.threads = threads;
  w.force = force;
  w.progress = flags.show_progress();
  return w;
}

Result<std::unique_ptr<Checkpoint>> OpenInput(const std::string& arg) {
  FORGE_ASSIGN_OR_RETURN(ResolvedInput in, ResolveInput(arg));
  return Checkpoint::Open(in.path);
}

// Bytes that are not UTF-8 (a name quoted from hostile input) are replaced, never a throw mid-report.
void PrintJson(const nlohmann::json& j) {
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace forge::cli
