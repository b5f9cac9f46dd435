// The one file that includes the generated revision header, so a new commit recompiles this file only.
#include "forge/cli/version.h"

#include "forge_git_revision.h"

namespace forge::cli {

std::string VersionString() { return std::string(FORGE_VERSION) + " (git " + FORGE_GIT_REVISION + ")"; }
std::string GitRevision() { return FORGE_GIT_REVISION; }

}  // namespace forge::cli
