// `forge verify --identity`: the CPU reference decoder replays plain and MTP speculative greedy decoding
// and proves they emit the same tokens (exit 5 otherwise, 2 without an MTP head), measuring acceptance.
#pragma once

#include <string>

#include "forge/cli/output.h"

namespace forge::cli {

struct IdentityOptions {
  std::string model;
  std::string prompt_tokens, prompts_file, prompt_text;
  int64_t max_tokens = 64;
  int depth = 1;
  std::string mtp_hidden = "post-norm";
  unsigned threads = 0;
  bool ignore_eos = false;
  bool record = false;  // forge-verify.json + the card's verification section (forge/card/verify_record.h)
};

int RunIdentity(const IdentityOptions& o, const CommonFlags& flags);

}  // namespace forge::cli
