// Signals and swaps around a running forge: SIGINT/SIGTERM/SIGHUP at random points remove the staging
// directory and the lock (the process still ends by that signal); a mapped source shrunk by another
// process (SIGBUS) is one line naming the file, exit 1, nothing left; a --force replacement never leaves
// the final name empty, and an old output moved aside by a killed swap is put back by the next run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "tests/e2e/child_process.h"
#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;
namespace fs = std::filesystem;

// One bf16 tensor of `mb` MB in DIR/model.safetensors: random bytes, or a sparse file of zeros (fast to
// make at any size).
std::string MakeSource(const TempDir& t, uint64_t mb, bool sparse) {
  const std::string dir = t.Sub("src");
  fs::create_directory(dir);
  const uint64_t bytes = mb << 20;
  nlohmann::json header = {
      {"w.weight", {{"dtype", "BF16"}, {"shape", {bytes / 2 / 1024, 1024}}, {"data_offsets", {0, bytes}}}}};
  const std::string head = SafetensorsBytes(header.dump(), 0);
  if (sparse) {
    WriteFile(dir + "/model.safetensors", head);
    fs::resize_file(dir + "/model.safetensors", head.size() + bytes);
  } else {
    std::string all = head;
    std::mt19937_64 rng(3);
    for (uint64_t i = 0; i < bytes / 8; ++i) {
      const uint64_t v = rng();
      all.append(reinterpret_cast<const char*>(&v), 8);
    }
    WriteFile(dir + "/model.safetensors", all);
  }
  return dir;
}

// forge with `args`, its stderr into `stderr_path`.
pid_t Spawn(const std::vector<std::string>& args, const std::string& stderr_path) {
  return testing::Spawn(args, [&] {
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, 2);
  });
}

std::vector<std::string> Leftovers(const std::string& dir, const std::vector<std::string>& keep) {
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::find(keep.begin(), keep.end(), name) == keep.end()) left.push_back(name);
  }
  return left;
}

std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::directory_iterator(dir)) m[e.path().filename().string()] = ReadFile(e.path());
  return m;
}

TEST(Signals, InterruptedWritesLeaveNoStagingAndNoLock) {
  TempDir t, logs;
  const std::string src = MakeSource(t, 48, false), out = t.Sub("out"), err = logs.Sub("err");
  const std::vector<std::string> args = {"reshard", "--src", src, "--out", out, "--max-shard-size", "20MB"};
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(Wait(Spawn(args, err)), 0);
  const auto full =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  const auto complete = Files(out);
  fs::remove_all(out);
  std::mt19937 rng(11);
  int interrupted = 0;
  for (int round = 0; round < 18; ++round) {
    const int sig = std::vector<int>{SIGINT, SIGTERM, SIGHUP}[round % 3];
    const pid_t pid = Spawn(args, err);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % (full.count() + 1)));
    ::kill(pid, sig);
    const int code = Wait(pid);
    if (code == -sig) {
      ++interrupted;
      // A signal after the commit began finds the output complete (the handler leaves a commit alone).
      if (fs::exists(out)) {
        EXPECT_TRUE(Files(out) == complete) << "round " << round << ": an incomplete output under the final name";
        fs::remove_all(out);
      }
      const std::string e = ReadFile(err);
      // Killed before main installed the handlers (a few microseconds after exec) prints nothing.
      if (!e.empty()) {
        EXPECT_NE(e.find("interrupted by SIG"), std::string::npos) << e;
      }
    } else {
      ASSERT_EQ(code, 0) << ReadFile(err);  // finished before the signal
      EXPECT_TRUE(Files(out) == complete) << "round " << round;
      fs::remove_all(out);
    }
    // The point: nothing beside the source, no staging directory, no lock file.
    const auto left = Leftovers(t.path(), {"src"});
    EXPECT_TRUE(left.empty()) << "round " << round << " (signal " << sig << "): left " << left.front();
    for (const auto& l : left) fs::remove_all(t.Sub(l));
  }
  EXPECT_GT(interrupted, 0);
  std::printf("interrupted %d of 18 runs\n", interrupted);
}

// The moments a random signal rarely hits: the lock file just created (not yet known to the handler) and
// the staging directory just made. Signalled the instant the lock file appears, nothing may be left.
TEST(Signals, ASignalAsTheLockAppearsLeavesNoLock) {
  TempDir t, logs;
  const std::string src = MakeSource(t, 4, false), out = t.Sub("out"), err = logs.Sub("err");
  const std::string lock = t.Sub(".out.forge-lock");
  int interrupted = 0;
  for (int round = 0; round < 24; ++round) {
    const int sig = std::vector<int>{SIGINT, SIGTERM, SIGHUP}[round % 3];
    const pid_t pid = Spawn({"reshard", "--src", src, "--out", out}, err);
    // Spins rather than sleeps: the window is microseconds wide.
    for (int spin = 0; spin < 50'000'000 && !fs::exists(lock); ++spin) {
    }
    if (round % 2 == 1) {  // every other round a little later: around the staging directory's creation
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(30 * round);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    ::kill(pid, sig);
    const int code = Wait(pid);
    if (code == -sig) ++interrupted;
    else ASSERT_EQ(code, 0) << ReadFile(err);
    if (fs::exists(out)) fs::remove_all(out);
    const auto left = Leftovers(t.path(), {"src"});
    EXPECT_TRUE(left.empty()) << "round " << round << " (signal " << sig << "): left " << left.front();
    for (const auto& l : left) fs::remove_all(t.Sub(l));
  }
  EXPECT_GT(interrupted, 0);
}

// Another process truncates the source while forge maps and reads it: the kernel delivers SIGBUS on the
// first page past the new end. forge must say which file, exit 1 and leave nothing.
TEST(Signals, ASourceShrunkWhileReadIsOneLineNamingTheFile) {
  TempDir t, logs;
  const std::string err = logs.Sub("err");
  // reshard copies with pwrite from the mapping (the kernel answers EFAULT); quantize reads the mapping
  // itself (SIGBUS). Both must name the source file.
  for (const char* command : {"reshard", "quantize"}) {
    int caught = 0;
    for (int attempt = 0; attempt < 12 && caught < 2; ++attempt) {
      const std::string src = MakeSource(t, 384, true), out = t.Sub("out");
      const pid_t pid = Spawn({command, "--src", src, "--out", out, "--threads", "1"}, err);
      std::this_thread::sleep_for(std::chrono::milliseconds(10 + 15 * attempt));
      fs::resize_file(src + "/model.safetensors", 4096);
      const int code = Wait(pid);
      const std::string e = ReadFile(err);
      if (code == 0) {  // finished before the truncation: a complete output
        fs::remove_all(out);
      } else {
        EXPECT_EQ(code, 1) << e;
        EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
        const bool named =
            e.find(src + "/model.safetensors") != std::string::npos && e.find("shrank") != std::string::npos;
        EXPECT_TRUE(named || e.find("MetadataIncompleteBuffer") != std::string::npos)
            << e;  // or before the open
        caught += named;
        EXPECT_FALSE(fs::exists(out));
      }
      const auto left = Leftovers(t.path(), {"src"});
      EXPECT_TRUE(left.empty()) << command << ": " << left.front();
      for (const auto& l : left) fs::remove_all(t.Sub(l));
      fs::remove_all(src);
    }
    EXPECT_GT(caught, 0) << command << ": no run was caught mid-read";
  }
}

TEST(Signals, ForceReplacementNeverLeavesTheFinalNameEmpty) {
  TempDir t, logs;
  const std::string src = MakeSource(t, 32, false), out = t.Sub("out"), err = logs.Sub("err");
  const std::vector<std::string> args = {"reshard",          "--src", src, "--out", out, "--force",
                                         "--max-shard-size", "10MB"};
  ASSERT_EQ(Wait(Spawn(args, err)), 0);
  const auto complete = Files(out);
  std::mt19937 rng(5);
  for (int round = 0; round < 16; ++round) {
    const pid_t pid = Spawn(args, err);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 60000));
    ::kill(pid, SIGKILL);
    Wait(pid);
    // SIGKILL runs no handler: whatever moment it hit, a complete output is under the final name (the old
    // one or the new one; here they are byte-identical), or the next run puts it back.
    if (!fs::exists(out)) {
      ASSERT_EQ(Wait(Spawn({"reshard", "--src", src, "--out", out, "--max-shard-size", "10MB"}, err)), 1)
          << "the next run must find the old output put back, and refuse to replace it without --force";
    }
    ASSERT_TRUE(fs::exists(out)) << "round " << round;
    EXPECT_TRUE(Files(out) == complete) << "round " << round;
  }
  ASSERT_EQ(Wait(Spawn(args, err)), 0);
  EXPECT_TRUE(Leftovers(t.path(), {"src", "out"}).empty());
}

// What a killed two-rename swap leaves (filesystems without an atomic exchange): the old output aside as
// ".out.forge-old-*", a staging directory, and nothing under the final name. The next run restores the old.
TEST(Signals, AnOldOutputMovedAsideIsPutBack) {
  TempDir t, logs;
  const std::string src = MakeSource(t, 1, false), out = t.Sub("out"), err = logs.Sub("err");
  ASSERT_EQ(Wait(Spawn({"reshard", "--src", src, "--out", out}, err)), 0);
  const auto old = Files(out);
  fs::rename(out, t.Sub(".out.forge-old-Ab12Cd"));
  fs::create_directory(t.Sub(".out.forge-tmp-Xy34Zw"));
  WriteFile(t.Sub(".out.forge-tmp-Xy34Zw/model.safetensors"), "partial");
  EXPECT_EQ(Wait(Spawn({"reshard", "--src", src, "--out", out}, err)), 1);  // the old is back: exists
  EXPECT_NE(ReadFile(err).find("already exists"), std::string::npos) << ReadFile(err);
  EXPECT_TRUE(Files(out) == old);
  EXPECT_TRUE(Leftovers(t.path(), {"src", "out"}).empty()) << Leftovers(t.path(), {"src", "out"}).front();
}

}  // namespace
}  // namespace forge
