// Trunk identity: every tensor of DIR outside the MTP head exists in SRC with the same dtype, shape and
// bytes, and every trunk tensor of SRC is in DIR (names compared as stored; both must use one naming).
// A tensor at the same offset of a hard-linked file (one inode) is identical without reading it, so a
// `--link` graft is checked in time proportional to what it wrote.
#pragma once

#include <string>
#include <vector>

#include "forge/ckpt/checkpoint.h"

namespace forge::verify {

struct TrunkCheck {
  int compared = 0;
  int linked = 0;  // of `compared`: same offset in the same inode, no bytes read
  uint64_t bytes_compared = 0;
  std::vector<std::string> mismatches;
  bool ok() const { return mismatches.empty(); }
};

TrunkCheck CheckTrunk(const Checkpoint& src, const Checkpoint& out);

}  // namespace forge::verify
