// A fixed-size thread pool with a task queue, and a helper to run N indexed jobs and collect the first
// error. Thread-safe.
#pragma once

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

 private:
  void WorkerLoop();
  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

unsigned DefaultThreadCount();

// Runs job(i) for i in [0, n) and waits: on `pool` when there is one with more than one thread, inline
// otherwise. For jobs that cannot fail (RunAll collects errors).
void ParallelFor(ThreadPool* pool, size_t n, const std::function<void(size_t)>& job);

}  // namespace forge
