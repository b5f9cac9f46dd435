// Faults around a running forge process: killed at random points, out of space, read-only sources, a
// second process on the same output. Whatever happens, nothing appears under the final name unless it is
// complete, and the sources' bytes and mtimes never change.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "tests/e2e/child_process.h"
#include "tests/st/test_files.h"

namespace forge {
namespace {
using namespace testing;
namespace fs = std::filesystem;

// A source checkpoint of 8 bf16 tensors of 8 MB each (random bytes) in one file: big enough that a
// reshard into 20 MB shards takes tens of milliseconds.
std::string MakeSource(const TempDir& t) {
  const std::string dir = t.Sub("src");
  fs::create_directory(dir);
  nlohmann::json header;
  constexpr uint64_t kBytes = 8u << 20;
  for (uint64_t i = 0; i < 8; ++i) {
    std::string name = "t";
    name.append(std::to_string(i)).append(".weight");  // appended: GCC 12 warns spuriously on "t" + ...
    header[name] = {{"dtype", "BF16"},
                    {"shape", {kBytes / 2 / 1024, 1024}},
                    {"data_offsets", {i * kBytes, (i + 1) * kBytes}}};
  }
  std::string bytes = SafetensorsBytes(header.dump(), 0);
  std::mt19937_64 rng(1);
  bytes.reserve(bytes.size() + 8 * kBytes);
  for (uint64_t i = 0; i < 8 * kBytes / 8; ++i) {
    const uint64_t v = rng();
    bytes.append(reinterpret_cast<const char*>(&v), 8);
  }
  WriteFile(dir + "/model.safetensors", bytes);
  WriteFile(dir + "/config.json", R"({"model_type": "qwen3_5"})");
  return dir;
}

struct FileState {
  std::string bytes;
  int64_t mtime_ns;
};
std::map<std::string, FileState> Snapshot(const std::string& dir) {
  std::map<std::string, FileState> s;
  for (const auto& e : fs::directory_iterator(dir)) {
    struct stat st;
    ::stat(e.path().c_str(), &st);
    s[e.path().filename().string()] = {ReadFile(e.path().string()),
                                       st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
  }
  return s;
}

// Entries of `dir` other than `keep`: what a run left beside its output.
std::vector<std::string> Leftovers(const std::string& dir, const std::string& keep) {
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name != keep && name != "src") left.push_back(name);
  }
  return left;
}

TEST(Faults, KilledAtRandomPointsNeverLeavesAnIncompleteOutputOrTouchesTheSource) {
  TempDir t;
  const std::string src = MakeSource(t), out = t.Sub("out");
  const auto before = Snapshot(src);
  const std::vector<std::string> args = {"reshard",          "--src", src, "--out", out,
                                         "--max-shard-size", "20MB",  "-q"};
  // An undisturbed run: how long it takes (to spread the kills over it) and what a complete output is.
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(Wait(Spawn(args)), 0);
  const auto full =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  std::map<std::string, std::string> complete;
  for (const auto& e : fs::directory_iterator(out))
    complete[e.path().filename().string()] = ReadFile(e.path());
  fs::remove_all(out);
  // Whatever is under the final name must be that complete output (a kill can land after the rename).
  auto expect_complete = [&](int round) {
    std::map<std::string, std::string> got;
    for (const auto& e : fs::directory_iterator(out)) got[e.path().filename().string()] = ReadFile(e.path());
    EXPECT_TRUE(got == complete) << "round " << round << ": an incomplete output under the final name";
    fs::remove_all(out);
  };
  std::mt19937 rng(7);
  int killed = 0, finished = 0;
  for (int round = 0; round < 24; ++round) {
    const pid_t pid = Spawn(args);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % (full.count() * 3 / 2 + 1)));
    ::kill(pid, SIGKILL);
    const int code = Wait(pid);
    if (code == -SIGKILL) {
      ++killed;
      if (fs::exists(out)) expect_complete(round);  // killed after the rename: complete
    } else {
      ++finished;  // it completed before the signal
      ASSERT_EQ(code, 0);
      expect_complete(round);
    }
    EXPECT_EQ(Snapshot(src).size(), before.size());
    for (const auto& [name, state] : Snapshot(src)) {
      EXPECT_EQ(state.bytes, before.at(name).bytes) << name;
      EXPECT_EQ(state.mtime_ns, before.at(name).mtime_ns) << name;
    }
  }
  EXPECT_GT(killed, 0);
  // A run after all those kills succeeds and removes their staging directories.
  ASSERT_EQ(Wait(Spawn(args)), 0);
  EXPECT_TRUE(Leftovers(t.path(), "out").empty());
  std::printf("killed %d runs mid-way, %d finished first\n", killed, finished);
}

TEST(Faults, OutOfSpaceIsOneClearErrorAndLeavesNothing) {
  TempDir t;
  const std::string src = MakeSource(t), out = t.Sub("out");
  // The file-size limit makes the writes past 20 MB fail (EFBIG) as a full disk would (ENOSPC), without
  // root or a mount: the error path and the cleanup are the same.
  TempDir logs;
  const std::string log_path = logs.Sub("stderr");
  const pid_t pid = Spawn({"reshard", "--src", src, "--out", out, "--max-shard-size", "40MB"}, [&] {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {20u << 20, 20u << 20};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 2);
  });
  EXPECT_EQ(Wait(pid), 1);
  const std::string err = ReadFile(log_path);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find(".safetensors"), std::string::npos) << err;  // names the file it could not write
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(Leftovers(t.path(), "").empty()) << Leftovers(t.path(), "").front();
}

// A real full disk: a 10 MB tmpfs mounted in a private user + mount namespace (no root needed where the
// kernel allows unprivileged namespaces; skipped elsewhere, the file-size-limit test above still runs).
TEST(Faults, FullTmpfsIsOneClearErrorAndLeavesNothing) {
  if (std::system("unshare --user --map-root-user --mount true >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no unprivileged user+mount namespaces here";
  }
  TempDir t;
  const std::string src = MakeSource(t), mnt = t.Sub("small");
  fs::create_directory(mnt);
  const std::string script = "mount -t tmpfs -o size=10m tmpfs " + mnt + " && " + FORGE_BIN +
                             " reshard --src " + src + " --out " + mnt + "/out 2>" + t.Sub("stderr") +
                             "; echo $? >" + t.Sub("rc") + "; ls -A " + mnt + " >" + t.Sub("left");
  ASSERT_EQ(std::system(("unshare --user --map-root-user --mount sh -c '" + script + "'").c_str()), 0);
  EXPECT_EQ(ReadFile(t.Sub("rc")), "1\n");
  const std::string err = ReadFile(t.Sub("stderr"));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_NE(err.find(".safetensors"), std::string::npos) << err;
  EXPECT_EQ(ReadFile(t.Sub("left")), "") << "left on the full filesystem";
}

TEST(Faults, ReadOnlySourcesAreEnough) {
  TempDir t;
  const std::string src = MakeSource(t), out = t.Sub("out");
  const auto before = Snapshot(src);
  for (const auto& e : fs::directory_iterator(src))
    fs::permissions(e.path(), fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(src, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                           fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(t.path(), fs::perms::all);  // the output's parent stays writable for anyone
  // As root, permissions are not enforced: run forge as `nobody` then, so the read-only bits really bind.
  const bool root = ::geteuid() == 0;
  const passwd* nobody = ::getpwnam("nobody");
  if (root && nobody == nullptr) GTEST_SKIP() << "root without a 'nobody' user: cannot drop privileges";
  const uid_t uid = root ? nobody->pw_uid : 0;
  const gid_t gid = root ? nobody->pw_gid : 0;
  // A copy of the binary `nobody` can reach: the build tree may sit in a directory only its owner can enter.
  const std::string binary = t.Sub("forge");
  fs::copy_file(FORGE_BIN, binary);
  fs::permissions(binary, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  const pid_t pid = Spawn(
      {"reshard", "--src", src, "--out", out, "--max-shard-size", "20MB", "-q"},
      [&] {
        if (root && (::setgid(gid) != 0 || ::setuid(uid) != 0)) ::_exit(126);
      },
      binary);
  EXPECT_EQ(Wait(pid), 0);
  EXPECT_TRUE(fs::exists(out + "/model.safetensors.index.json"));
  fs::permissions(src, fs::perms::owner_all);
  for (const auto& [name, state] : Snapshot(src)) {
    EXPECT_EQ(state.bytes, before.at(name).bytes) << name;
    EXPECT_EQ(state.mtime_ns, before.at(name).mtime_ns) << name;
  }
}

TEST(Faults, OutputInsideTheSourceIsRefused) {
  TempDir t;
  const std::string src = MakeSource(t);
  const auto before = Snapshot(src);
  for (const std::string& out : {src + "/sub", src}) {
    auto r = RunForge("reshard --src " + src + " --out " + out + " --force");
    EXPECT_EQ(r.exit_code, 1) << out;
    EXPECT_NE(r.err.find("overlaps a source"), std::string::npos) << r.err;
  }
  const auto after = Snapshot(src);
  EXPECT_EQ(after.size(), before.size());
}

TEST(Faults, ASecondProcessOnTheSameOutputRefusesCleanly) {
  TempDir t;
  const std::string src = MakeSource(t), out = t.Sub("out");
  // This process holds the output's lock as a running forge would.
  const int fd = ::open(t.Sub(".out.forge-lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto r = RunForge("reshard --json --src " + src + " --out " + out);
  EXPECT_EQ(r.exit_code, 75) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["exit_code"], 75);
  EXPECT_FALSE(fs::exists(out));
  ::close(fd);  // released: the next run goes ahead (and removes the lock file when done)
  auto again = RunForge("reshard -q --src " + src + " --out " + out);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(Leftovers(t.path(), "out").empty());
}

}  // namespace
}  // namespace forge
