// What a signal leaves behind. SIGINT, SIGTERM and SIGHUP remove every staging directory and lock file
// this process holds, then end it by the same signal (exit status 128 + N); SIGBUS (a mapped source that
// another process shrank or deleted) names the file and ends it with exit 1, after the same clean-up.
//
// The handlers use only system calls. A StagedDir registers its staging directory and lock file here and
// moves its slot from "writing" to "committing" (one atomic exchange) before it renames anything into
// place; a handler cleans only slots it moves from "writing" to "aborting", so a clean-up never races a
// commit: either the output is committed whole, or its staging directory is removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace forge {

void InstallSignalHandlers();

// While one of these lives (on any thread), SIGINT/SIGTERM/SIGHUP wait: the handler notes the signal and
// returns, and the last section to close raises it again. A lock file created but not yet registered, or
// unregistered but not yet removed, would otherwise outlive a signal that lands between the two steps.
class DeferTerminationSignals {
 public:
  DeferTerminationSignals();
  ~DeferTerminationSignals();
  DeferTerminationSignals(const DeferTerminationSignals&) = delete;
  DeferTerminationSignals& operator=(const DeferTerminationSignals&) = delete;
};

// A lock file (and later its staging directory) that a signal must remove. Returns a slot, or -1 when the
// table is full (then nothing is removed by a signal; the next run still cleans up). Register, set the
// directory and unregister inside a DeferTerminationSignals section, together with creating the lock or
// directory (or removing the lock), so no signal falls between the two.
int RegisterStaging(const std::string& lock_file);
void SetStagingDir(int slot, const std::string& staging_dir);
// writing -> committing; false when a signal is already aborting the process (then do not commit).
bool BeginCommit(int slot);
void UnregisterStaging(int slot);

// Mapped source files, so a SIGBUS can say which one changed under forge.
// `path` must stay valid until UnregisterMapping.
int RegisterMapping(const void* begin, size_t length, const char* path);
void UnregisterMapping(int slot);

// Removes a directory tree with system calls only (what a signal handler may do); true when gone.
bool RemoveTreeForSignal(const char* path);

}  // namespace forge
