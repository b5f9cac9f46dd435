#include "forge/base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
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
    queued_.fetch_add(1);
  }
  cv_.notify_one();
}

namespace {
// How long an idle worker keeps looking for the next region before it sleeps: longer than the decoder's
// serial stretches between regions (norms, routing, the GDN conv: tens of microseconds), short enough that
// a pool left idle stops using the CPU at once.
constexpr auto kSpin = std::chrono::microseconds(300);
}  // namespace

bool ThreadPool::WaitForWork(uint64_t* seen) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (region_generation_.load() != *seen) return true;
    if (queued_.load() != 0 || (i % 64 == 63 && std::chrono::steady_clock::now() > until)) break;
    std::this_thread::yield();  // a spinning worker gives its core to any thread that has work
  }
  std::unique_lock<std::mutex> lock(mu_);
  sleepers_.fetch_add(1);  // seq_cst, as the region's generation: a region opened now is seen below
  cv_.wait(lock, [&] { return stop_ || !queue_.empty() || region_generation_.load() != *seen; });
  sleepers_.fetch_sub(1);
  return region_generation_.load() != *seen;
}

void ThreadPool::JoinRegion() {
  // At most size() - 1 workers take jobs (the caller is the last thread). A worker counted while the region
  // is closed does nothing; the region's owner waits for the count to drop before it reuses the fields.
  if (region_workers_.fetch_add(1) < static_cast<int>(workers_.size()) - 1 && region_open_.load()) {
    for (size_t i; (i = region_next_.fetch_add(1)) < region_n_;) {
      (*region_job_)(i);
      region_done_.fetch_add(1);
    }
  }
  region_workers_.fetch_sub(1);
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = region_generation_.load();
  for (;;) {
    if (WaitForWork(&seen)) {
      seen = region_generation_.load();
      JoinRegion();
      continue;
    }
    std::function<void()> task;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) {
        if (stop_) return;  // stop_ and drained
        continue;
      }
      task = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1);
    }
    task();
  }
}

bool ThreadPool::TryRunRegion(size_t n, const std::function<void(size_t)>& job) {
  bool idle = false;
  if (!region_busy_.compare_exchange_strong(idle, true)) return false;
  region_job_ = &job;
  region_n_ = n;
  region_next_.store(0);
  region_done_.store(0);
  region_open_.store(true);
  region_generation_.fetch_add(1);
  if (sleepers_.load() != 0) {
    std::lock_guard<std::mutex> lock(mu_);  // a sleeper is either waiting (woken) or sees the generation
    cv_.notify_all();
  }
  for (size_t i; (i = region_next_.fetch_add(1)) < n;) {
    job(i);
    region_done_.fetch_add(1);
  }
  while (region_done_.load() < n) std::this_thread::yield();
  region_open_.store(false);
  while (region_workers_.load() != 0) std::this_thread::yield();
  region_busy_.store(false);
  return true;
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
  if (pool->TryRunRegion(n, job)) return;
  // Another region is open: this call is nested in one of its jobs (the workers may all be inside it,
  // so waiting for them could deadlock) or races it from another thread. Either way: here, in order.
  for (size_t i = 0; i < n; ++i) job(i);
}

}  // namespace forge
