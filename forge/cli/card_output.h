// What convert, quantize and graft publish beside the weights: forge-manifest.json and the model card
// (forge/card/model_card.h), written into the staging directory before it is renamed into place, and
// `--no-card` to leave both out (SRC's own README.md is then carried as it is).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "forge/card/model_card.h"
#include "forge/ckpt/checkpoint.h"
#include "forge/plan/writer.h"

namespace forge::cli {

struct CardFlag {
  bool no_card = false;
  void Add(CLI::App* cmd);
};

// The command line as typed (main.cc records it), for the card's "what was done".
void SetCommandLine(int argc, char** argv);
const std::string& CommandLine();

// Facts every card starts from: the command, its line, forge's version, SRC (and its repo id).
std::shared_ptr<card::CardFacts> NewCardFacts(const std::string& command, const Checkpoint& src,
                                              const std::string& src_arg, const std::string& out_dir);

// What --mtp-policy did to the head, in words (`quantized`: the output is quantized).
std::string DescribeMtpPolicy(const std::string& policy, bool quantized);

// After `w`'s own before_commit: the manifest (hashed on `w->threads`) and the card; SRC's README.md is not
// copied (the card keeps it below). `facts` may still change until the commit (a measured number).
void AddManifestAndCard(plan::WriteOptions* w, std::shared_ptr<const card::CardFacts> facts,
                        const std::string& src_dir);

}  // namespace forge::cli
