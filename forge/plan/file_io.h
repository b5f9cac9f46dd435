// Positioned reads and writes as the writer does them: whole (retried on EINTR and short counts), one
// write call at a time of kWriteCallBytes, errors naming the file.
#pragma once

#include <cstdint>
#include <string>

#include "forge/base/status.h"

namespace forge::plan {

// Bytes per write call. Measured on ext4 (Linux 6.18, page cache warm): one 16 MB pwrite moves 0.3-0.5 GB/s,
// the same bytes in 256 KB calls 1-2 GB/s (the kernel's copy into the page cache is what costs, and its
// source then stays in the core's cache). scripts/bench.sh shows the whole-process effect.
inline constexpr uint64_t kWriteCallBytes = 256u << 10;

// pwrite from a mapping fails with EFAULT (where a load would raise SIGBUS) when the mapped file lost the
// pages being copied: another process truncated a source. A read that ends early means the same.
inline constexpr const char* kSourceShrank =
    "the file shrank while forge read it (another process truncated or rewrote a source); nothing was "
    "written";

// EFAULT comes back as kSourceShrank without a file: the caller names the source.
Status PwriteAll(int fd, const uint8_t* data, uint64_t n, uint64_t offset, const std::string& path);
// *short_read: the file ended before n bytes.
Status PreadAll(int fd, uint8_t* data, uint64_t n, uint64_t offset, const std::string& path,
                bool* short_read);

}  // namespace forge::plan
