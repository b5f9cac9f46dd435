// Trunk identity: every tensor of DIR outside the MTP head exists in SRC with the same dtype, shape and
// bytes, and every trunk tensor of SRC is in DIR (names compared as stored; both must use one naming).
// A tensor at the same offset of a hard-linked file (one inode) is identical without reading it, so a
// `--link` graft is checked in time proportional to what it wrote.
#pragma once

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "forge/ckpt/checkpoint.h"

namespace forge::verify {

// A source file the output holds a copy of, already proven byte-identical (read back and compared while
// it was copied): its tensors at the same offsets are identical without reading them again.
struct VerifiedCopy {
  std::string out_file;  // its name in the output directory
  std::string src_path;  // the source file, as the source checkpoint names it
  bool operator<(const VerifiedCopy& o) const { return std::tie(out_file, src_path) < std::tie(o.out_file, o.src_path); }
};

struct TrunkCheck {
  int compared = 0;
  int linked = 0;  // of `compared`: same offset in the same inode, no bytes read
  int copied = 0;  // of `compared`: same offset in a VerifiedCopy, no bytes read
  uint64_t bytes_compared = 0;
  std::vector<std::string> mismatches;
  bool ok() const { return mismatches.empty(); }
};

// `left_out`: SRC tensors the output drops on purpose (mlx-lm's vision tower), not missing.
TrunkCheck CheckTrunk(const Checkpoint& src, const Checkpoint& out, const std::set<VerifiedCopy>& copies = {},
                      const std::set<std::string>& left_out = {});

}  // namespace forge::verify
