// Shared by the fuzz targets: a scratch directory per process, and a failed invariant as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace forge::fuzz {

// A directory of this process's own, created on first use and kept for the whole run.
const std::string& ScratchDir();
void WriteBytes(const std::string& path, const uint8_t* data, size_t size);

// A broken invariant: report and abort, so libFuzzer records the input as a crash.
[[noreturn]] void Violation(const std::string& what);

}  // namespace forge::fuzz
