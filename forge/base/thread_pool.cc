#include "forge/base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <system_error>

namespace forge {

unsigned DefaultThreadCount() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0) threads = DefaultThreadCount();
  threads = std::min(threads, kMaxThreads);
  for (unsigned i = 0; i < threads; ++i) {
    try {
      workers_.emplace_back([this] { WorkerLoop(); });
    } catch (const std::system_error&) {
      if (workers_.empty()) throw;  // not even one thread: the top-level handler reports it
      break;                        // the system's thread limit: work with the threads there are
    }
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::WorkerLoop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

Status ThreadPool::RunAll(size_t n, const std::function<Status(size_t)>& job) {
  std::vector<Status> results(n);
  std::mutex done_mu;
  std::condition_variable done_cv;
  size_t remaining = n;
  std::atomic<bool> failed{false};
  for (size_t i = 0; i < n; ++i) {
    Submit([&, i] {
      // Once one job failed, the rest are skipped: their work would be thrown away.
      if (!failed.load()) {
        results[i] = job(i);
        if (!results[i].ok()) failed.store(true);
      }
      std::lock_guard<std::mutex> lock(done_mu);
      if (--remaining == 0) done_cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(done_mu);
  done_cv.wait(lock, [&] { return remaining == 0; });
  for (auto& r : results) {
    if (!r.ok()) return r;
  }
  return Status();
}

void ParallelFor(ThreadPool* pool, size_t n, const std::function<void(size_t)>& job) {
  if (pool == nullptr || pool->size() <= 1 || n < 2) {
    for (size_t i = 0; i < n; ++i) job(i);
    return;
  }
  Status st = pool->RunAll(n, [&](size_t i) {
    job(i);
    return Status();
  });
  (void)st;  // the jobs cannot fail
}

}  // namespace forge
