#include "forge/cli/output.h"

#include <cstdio>

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

void PrintJson(const nlohmann::json& j) { std::printf("%s\n", j.dump(2).c_str()); }

}  // namespace forge::cli
