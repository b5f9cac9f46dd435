// A carried file copied into the output by the writer's threads, proven equal to its source as it goes.
//
// The file is cut into ranges of `chunk_bytes`, each a job: every 256 KB is read from the source, written,
// read back from the output and compared (a difference is an error naming the output file and bytes). When
// a sink wants the bytes (a manifest hashes them), one more job hands them over in file order: it follows
// the copy jobs range by range, reading each back once it is copied. So a big file is copied on all threads
// while its one sequential hash runs beside them, instead of copy and hash in one thread.
//
// Jobs must be queued in order (ranges, then the sink job) on a FIFO pool: the sink job waits only for
// ranges queued before it, so it never holds a thread that one of them needs. Abort() wakes it when a range
// will never be copied (a job failed somewhere and the pool skips the rest).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "forge/base/progress.h"
#include "forge/base/status.h"

namespace forge::plan {

class CarriedBytesSink;

class CarriedCopy {
 public:
  static Result<std::unique_ptr<CarriedCopy>> Open(const std::string& src, const std::string& dst,
                                                   CarriedBytesSink* sink, uint64_t chunk_bytes);
  ~CarriedCopy();
  CarriedCopy(const CarriedCopy&) = delete;
  CarriedCopy& operator=(const CarriedCopy&) = delete;

  size_t jobs() const { return ranges_ + (sink_ ? 1 : 0); }
  // Job j < ranges: copy range j; j == ranges: hand the bytes to the sink.
  Status Run(size_t job, Progress* progress);
  void Abort();
  // After every job: the output made durable and closed.
  Status Finish();

 private:
  CarriedCopy() = default;
  Status CopyRange(size_t range, Progress* progress);
  Status Feed();

  std::string src_, dst_;
  int in_ = -1, out_ = -1;
  uint64_t size_ = 0, chunk_ = 0;
  size_t ranges_ = 0;
  CarriedBytesSink* sink_ = nullptr;
  std::mutex write_turn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char> copied_;  // per range, under mu_
  bool aborted_ = false;
};

}  // namespace forge::plan
