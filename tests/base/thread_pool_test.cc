// The pool's two ways of running work: ParallelFor regions (published through atomics, the caller taking
// jobs too) and the task queue (Submit / RunAll), alone and interleaved. Every index runs exactly once,
// its writes are visible when the call returns, a region nested in a region's job or opened from a second
// thread at the same time runs inline, and the pool shuts down cleanly while its workers spin.
#include "forge/base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace forge::testing {
namespace {

TEST(ThreadPool, EveryIndexOfEveryRegionRunsOnceAndItsWritesAreSeen) {
  for (unsigned threads : {1u, 2u, 3u, 8u}) {
    ThreadPool pool(threads);
    std::mt19937 rng(threads);
    std::vector<int> plain(300);  // written without atomics: the region's end must publish them
    for (int region = 0; region < 3000; ++region) {
      const size_t n = rng() % 300;
      std::fill(plain.begin(), plain.end(), 0);
      ParallelFor(&pool, n, [&](size_t i) { plain[i] += static_cast<int>(i) + 1; });
      for (size_t i = 0; i < plain.size(); ++i)
        ASSERT_EQ(plain[i], i < n ? static_cast<int>(i) + 1 : 0)
            << "threads " << threads << " region " << region;
    }
  }
}

TEST(ThreadPool, RegionsUseSeveralThreads) {
  ThreadPool pool(4);
  std::atomic<int> inside{0}, most{0};
  for (int region = 0; region < 200 && most.load() < 2; ++region) {
    ParallelFor(&pool, 16, [&](size_t) {
      const int now = inside.fetch_add(1) + 1;
      for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      inside.fetch_sub(1);
    });
  }
  EXPECT_GE(most.load(), 2);
}

TEST(ThreadPool, ANestedRegionRunsInlineAndCompletes) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> count(64);
  ParallelFor(&pool, 8,
              [&](size_t i) { ParallelFor(&pool, 8, [&](size_t j) { count[i * 8 + j].fetch_add(1); }); });
  for (auto& c : count) EXPECT_EQ(c.load(), 1);
}

TEST(ThreadPool, RegionsFromTwoThreadsAtOnceBothComplete) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> a(100), b(100);
  auto hammer = [&pool](std::vector<std::atomic<int>>& count) {
    for (int r = 0; r < 2000; ++r) ParallelFor(&pool, count.size(), [&](size_t i) { count[i].fetch_add(1); });
  };
  std::thread other(hammer, std::ref(b));
  hammer(a);
  other.join();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].load(), 2000) << i;
    EXPECT_EQ(b[i].load(), 2000) << i;
  }
}

TEST(ThreadPool, QueuedTasksAndRegionsInterleave) {
  ThreadPool pool(4);
  std::atomic<int> tasks{0};
  std::vector<int> plain(50);
  for (int round = 0; round < 200; ++round) {
    for (int t = 0; t < 3; ++t) pool.Submit([&] { tasks.fetch_add(1); });
    std::fill(plain.begin(), plain.end(), 0);
    ParallelFor(&pool, plain.size(), [&](size_t i) { plain[i] = 1; });
    for (int v : plain) ASSERT_EQ(v, 1);
    Status st =
        pool.RunAll(5, [&](size_t i) { return i == 3 && round == 7 ? Status::Invalid("three") : Status(); });
    ASSERT_EQ(st.ok(), round != 7);
  }
  // The destructor drains the queue: every submitted task has run once it returns.
  {
    ThreadPool spinning(4);
    for (int t = 0; t < 100; ++t) spinning.Submit([&] { tasks.fetch_add(1); });
    ParallelFor(&spinning, 4, [](size_t) {});  // workers left spinning when it goes away
  }
  // The first pool's Submits may still be running: RunAll waits only for its own jobs.
  while (tasks.load() < 200 * 3 + 100) std::this_thread::yield();
  EXPECT_EQ(tasks.load(), 200 * 3 + 100);
}

}  // namespace
}  // namespace forge::testing
