#include "forge/base/signals.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

namespace forge {
namespace {

enum SlotState : int { kFree = 0, kClaimed, kWriting, kCommitting, kAborting };

constexpr int kStagingSlots = 16;
struct StagingSlot {
  std::atomic<int> state{kFree};
  char dir[PATH_MAX];
  char lock[PATH_MAX];
};
StagingSlot g_staging[kStagingSlots];

// Enough for a checkpoint of tens of thousands of shards; beyond it a SIGBUS is reported without a name.
constexpr int kMappingSlots = 1 << 16;
struct MappingSlot {
  std::atomic<uintptr_t> begin{0};
  std::atomic<size_t> length{0};
  std::atomic<const char*> path{nullptr};  // owned by the MappedFile, which unregisters before freeing it
};
MappingSlot g_mappings[kMappingSlots];  // zero-initialized: no memory until used
std::atomic<int> g_mapping_hint{0};

// Low 16 bits: DeferTerminationSignals sections open; above them, a signal that arrived meanwhile. One
// word, so a section closing on one thread never misses a signal noted by the handler on another.
std::atomic<uint32_t> g_deferral{0};
constexpr uint32_t kSectionMask = 0xffff;

void WriteAll(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void WriteNumber(uint64_t v) {
  char buf[24];
  int i = 23;
  buf[i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && i > 0);
  WriteAll(buf + i);
}

void CopyPath(char* dst, const std::string& src) {
  const size_t n = src.size() < PATH_MAX - 1 ? src.size() : PATH_MAX - 1;
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

// linux_dirent64 as getdents64 returns it.
struct Dirent64 {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[1];
};

bool RemoveBelow(int dir_fd, int depth) {
  if (depth > 16) return false;
  alignas(8) char buf[4096];
  bool ok = true;
  // Passes over the listing until one removes nothing (entries removed mid-listing may shift the rest).
  for (bool removed = true; removed;) {
    removed = false;
    ::lseek(dir_fd, 0, SEEK_SET);
    for (;;) {
      const long n = ::syscall(SYS_getdents64, dir_fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long at = 0; at < n;) {
        const auto* d = reinterpret_cast<const Dirent64*>(buf + at);
        at += d->reclen;
        if (std::strcmp(d->name, ".") == 0 || std::strcmp(d->name, "..") == 0) continue;
        if (::unlinkat(dir_fd, d->name, 0) == 0) {
          removed = true;
          continue;
        }
        const int sub = ::openat(dir_fd, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
          ok = false;
          continue;
        }
        ok = RemoveBelow(sub, depth + 1) && ok;
        ::close(sub);
        const bool gone = ::unlinkat(dir_fd, d->name, AT_REMOVEDIR) == 0;
        removed = removed || gone;
        ok = gone && ok;
      }
    }
  }
  return ok;
}

// Removes what every slot still writing left, and claims those slots so no commit follows.
void AbortStaging() {
  for (auto& s : g_staging) {
    int expected = kWriting;
    if (s.state.compare_exchange_strong(expected, kAborting)) {
      if (s.dir[0] != '\0') RemoveTreeForSignal(s.dir);
      if (s.lock[0] != '\0') ::unlink(s.lock);
    } else if (expected == kCommitting && s.lock[0] != '\0') {
      ::unlink(s.lock);  // the commit is left alone; the lock ends with this process either way
    }
  }
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

// True when a section is open: the signal is noted for the last section to raise again.
bool Deferred(int sig) {
  uint32_t word = g_deferral.load();
  while ((word & kSectionMask) != 0) {
    const uint32_t noted = (word & kSectionMask) | (static_cast<uint32_t>(sig) << 16);
    if (g_deferral.compare_exchange_weak(word, noted)) return true;
  }
  return false;
}

void OnTerminate(int sig) {
  if (Deferred(sig)) return;
  AbortStaging();
  WriteAll("forge: interrupted by ");
  WriteAll(SignalName(sig));
  WriteAll(": nothing was written (staging and lock removed)\n");
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void OnBus(int, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  const char* path = nullptr;
  uint64_t offset = 0;
  for (int i = 0; i < kMappingSlots && path == nullptr; ++i) {
    const uintptr_t b = g_mappings[i].begin.load(std::memory_order_acquire);
    const size_t len = g_mappings[i].length.load(std::memory_order_acquire);
    if (b != 0 && addr >= b && addr < b + len) {
      path = g_mappings[i].path.load(std::memory_order_acquire);
      offset = addr - b;
    }
  }
  AbortStaging();
  WriteAll("forge: error: ");
  if (path != nullptr) {
    WriteAll(path);
    WriteAll(": the file shrank or was truncated while forge read it (SIGBUS at byte ");
    WriteNumber(offset);
    WriteAll("); another process changed a source; nothing was written\n");
  } else {
    WriteAll("a mapped file shrank while forge read it (SIGBUS); nothing was written\n");
  }
  ::_exit(1);
}

}  // namespace

bool RemoveTreeForSignal(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;
  RemoveBelow(fd, 0);
  ::close(fd);
  return ::rmdir(path) == 0 || errno == ENOENT;
}

void InstallSignalHandlers() {
  struct sigaction term {};
  term.sa_handler = OnTerminate;
  sigemptyset(&term.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &term, nullptr);
  struct sigaction bus {};
  bus.sa_sigaction = OnBus;
  bus.sa_flags = SA_SIGINFO;
  sigemptyset(&bus.sa_mask);
  ::sigaction(SIGBUS, &bus, nullptr);
}

DeferTerminationSignals::DeferTerminationSignals() { g_deferral.fetch_add(1); }

DeferTerminationSignals::~DeferTerminationSignals() {
  uint32_t word = g_deferral.load();
  for (;;) {
    uint32_t next = word - 1;
    const int noted = static_cast<int>(next >> 16);
    if ((next & kSectionMask) == 0) next = 0;  // the last section takes the noted signal with it
    if (!g_deferral.compare_exchange_weak(word, next)) continue;
    if ((word & kSectionMask) == 1 && noted != 0) ::raise(noted);  // the handler runs now, on this thread
    return;
  }
}

int RegisterStaging(const std::string& lock_file) {
  for (int i = 0; i < kStagingSlots; ++i) {
    int expected = kFree;
    if (!g_staging[i].state.compare_exchange_strong(expected, kClaimed)) continue;
    g_staging[i].dir[0] = '\0';
    CopyPath(g_staging[i].lock, lock_file);
    g_staging[i].state.store(kWriting, std::memory_order_release);
    return i;
  }
  return -1;
}

void SetStagingDir(int slot, const std::string& staging_dir) {
  if (slot >= 0) CopyPath(g_staging[slot].dir, staging_dir);
}

bool BeginCommit(int slot) {
  if (slot < 0) return true;
  int expected = kWriting;
  return g_staging[slot].state.compare_exchange_strong(expected, kCommitting);
}

void UnregisterStaging(int slot) {
  if (slot < 0) return;
  int state = g_staging[slot].state.load();
  // An aborting slot belongs to the handler, which ends the process: leave it.
  while ((state == kWriting || state == kCommitting) &&
         !g_staging[slot].state.compare_exchange_weak(state, kFree)) {
  }
}

int RegisterMapping(const void* begin, size_t length, const char* path) {
  const int start = g_mapping_hint.load(std::memory_order_relaxed);
  for (int k = 0; k < kMappingSlots; ++k) {
    const int i = (start + k) % kMappingSlots;
    uintptr_t expected = 0;
    // Claimed with a marker first, so the handler never pairs a begin with a stale length or path.
    if (!g_mappings[i].begin.compare_exchange_strong(expected, 1)) continue;
    g_mappings[i].path.store(path, std::memory_order_release);
    g_mappings[i].length.store(length, std::memory_order_release);
    g_mappings[i].begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    g_mapping_hint.store(i + 1, std::memory_order_relaxed);
    return i;
  }
  return -1;
}

void UnregisterMapping(int slot) {
  if (slot < 0) return;
  g_mappings[slot].begin.store(0, std::memory_order_release);
  g_mappings[slot].length.store(0, std::memory_order_release);
}

}  // namespace forge
