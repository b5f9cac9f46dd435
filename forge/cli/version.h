// forge's version and the git revision it was built from (cmake/git_revision.cmake, at every build).
#pragma once

#include <string>

namespace forge::cli {

std::string VersionString();  // "0.1.0 (git 1d5aa8b0c3e2)"; "-dirty" when built from uncommitted changes
std::string GitRevision();    // "1d5aa8b0c3e2", "unknown" outside a git checkout

}  // namespace forge::cli
