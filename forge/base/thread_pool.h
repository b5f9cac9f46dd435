// A fixed-size thread pool with a task queue, and a helper to run N indexed jobs and collect the first
// error. Thread-safe.
//
// ParallelFor runs short, frequent regions (the reference decoder opens ~250 per token, each 20-500 us of
// work): through the task queue each region cost a lock, a condition-variable wake-up and a std::function per
// job, 100-200 us on a 16-vCPU VM, more than the work itself there. A region is instead published to the
// workers through atomics (a generation counter, a shared job index), the caller takes jobs too, and idle
// workers spin briefly (yielding) before they sleep, so back-to-back regions find them awake.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "forge/base/status.h"

namespace forge {

// More threads than this is a mistake, never a speed-up (--threads refuses it; the pool caps it).
inline constexpr unsigned kMaxThreads = 1024;

class ThreadPool {
 public:
  explicit ThreadPool(unsigned threads);  // 0 = hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()); }
  void Submit(std::function<void()> task);

  // Runs job(i) for i in [0, n) on the pool and waits; returns the first failing Status (by index).
  Status RunAll(size_t n, const std::function<Status(size_t)>& job);

  // Runs job(i) for i in [0, n) on the calling thread and up to size() - 1 workers, and waits. One region
  // at a time: returns false without running anything when another region is open (a nested or a
  // concurrent call), for the caller to fall back to RunAll or a loop.
  bool TryRunRegion(size_t n, const std::function<void(size_t)>& job);

 private:
  void WorkerLoop();
  bool WaitForWork(uint64_t* seen_generation);  // spin, then sleep; true: a region opened
  void JoinRegion();
  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<size_t> queued_{0};  // queue_.size(), readable without the lock while spinning

  // The open region (one at a time, owned by the thread that set region_busy_).
  std::atomic<bool> region_busy_{false};
  std::atomic<bool> region_open_{false};
  std::atomic<uint64_t> region_generation_{0};
  std::atomic<int> region_workers_{0};  // workers inside the region (at most size() - 1 take jobs)
  std::atomic<int> sleepers_{0};
  const std::function<void(size_t)>* region_job_ = nullptr;
  size_t region_n_ = 0;
  std::atomic<size_t> region_next_{0}, region_done_{0};
};

unsigned DefaultThreadCount();

// Runs job(i) for i in [0, n) and waits: on `pool` (as a region) when there is one with more than one
// thread and no other region is open, inline otherwise. For jobs that cannot fail (RunAll collects errors).
void ParallelFor(ThreadPool* pool, size_t n, const std::function<void(size_t)>& job);

}  // namespace forge
