// Checkpoint arguments that name a Hugging Face repo instead of a directory: `ORG/NAME` or
// `ORG/NAME@REVISION`, resolved offline in the local hub cache, the layout huggingface_hub writes:
//   ROOT/models--ORG--NAME/refs/REVISION      a branch or tag name -> the commit (one line)
//   ROOT/models--ORG--NAME/snapshots/COMMIT/  the files, links into ../../blobs/
// ROOT is the first of $HF_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub,
// ~/.cache/huggingface/hub that holds the repo. Nothing is downloaded: a repo not in the cache is one line
// saying where forge looked and how to download it. Which links a snapshot may follow is Checkpoint's rule
// (inside the repo folder only).
#pragma once

#include <string>
#include <vector>

#include "forge/base/status.h"

namespace forge {

struct ResolvedInput {
  std::string path;      // the directory (or file) to open
  std::string repo_id;   // "ORG/NAME" when resolved in the hub cache, else ""
  std::string revision;  // the commit of the snapshot, when resolved
};

// An existing path is itself (a path always wins over a repo id); else a repo id is looked up.
Result<ResolvedInput> ResolveInput(const std::string& arg);

// The cache roots, in the order searched (those whose variable is unset are skipped).
std::vector<std::string> HubCacheRoots();

// True when `dir` is a hub-cache snapshot (.../models--ORG--NAME/snapshots/REV).
bool IsHubSnapshot(const std::string& dir);

}  // namespace forge
