// The small repairs `inspect` proposes: strip-mtp (drop the head, declare 0 MTP layers) and fix-config
// (make mtp_num_hidden_layers agree with the tensors). Both carry every kept shard unchanged.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graft/trunk_layout.h"

namespace forge::graft {

struct SurgeryPlan {
  TrunkLayout out;
  nlohmann::json config;
  std::vector<std::string> notes;
};

Result<SurgeryPlan> BuildStripPlan(const Checkpoint& src);
// Exit 2 when nothing needs fixing; exit 3 for an incomplete head (graft or strip it instead).
Result<SurgeryPlan> BuildFixConfigPlan(const Checkpoint& src);

// Writes a surgery/graft output: the layout, `config`, SRC's auxiliary files, and forge-manifest.json; with
// `check_trunk`, proves every trunk tensor byte-identical to SRC's on the staged output before renaming it
// into place (a failure is exit 5 and leaves nothing under the output name).
struct SurgeryWrite {
  bool link = false, force = false, progress = true, check_trunk = true;
  unsigned threads = 0;
  std::vector<const Checkpoint*> also_reads;  // other inputs (graft's BASE): sources too
  // SRC auxiliary files not carried as they are: file name -> the text written instead, or nullopt to leave
  // it out (a runtime contract describes the head it came with; a graft or a strip replaces that head).
  std::map<std::string, std::optional<std::string>> replaced_files;
  // Runs on the staged output after forge-manifest.json is written (the model card quotes it).
  std::function<Status(const std::string& staged)> after_manifest;
};
Result<nlohmann::json> WriteSurgery(const Checkpoint& src, const TrunkLayout& out, const nlohmann::json& config,
                                    const std::string& out_dir, const SurgeryWrite& w);

}  // namespace forge::graft
