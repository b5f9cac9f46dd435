// Opens a checkpoint through the installed library and prints what forge's own `inspect config --json`
// also reports (tensor count, MTP status), so the package check can compare the two.
#include <cstdio>

#include "forge/ckpt/checkpoint.h"
#include "inspect/classify.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: forge_consumer DIR\n");
    return 64;
  }
  auto ckpt = forge::Checkpoint::Open(argv[1]);
  if (!ckpt.ok()) {
    std::fprintf(stderr, "%s\n", ckpt.status().ToString().c_str());
    return 1;
  }
  const forge::inspect::Report r = forge::inspect::InspectCheckpoint(**ckpt);
  std::printf("%zu %s\n", (*ckpt)->tensors().size(),
              std::string(forge::inspect::MtpStatusName(r.mtp.status)).c_str());
  return 0;
}
