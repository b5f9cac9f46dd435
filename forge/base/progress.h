// Progress on a terminal: one self-overwriting stderr line ("label  1.2/4.5 GB  27%  310 MB/s").
// Silent when disabled (--quiet, --json) or when stderr is not a TTY. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace forge {

class Progress {
 public:
  Progress(std::string label, uint64_t total_bytes, bool enabled);
  ~Progress();
  void Add(uint64_t bytes);
  void Finish();
  static bool StderrIsTty();

 private:
  void Draw(bool final_line);
  std::string label_;
  uint64_t total_;
  std::atomic<uint64_t> done_{0};
  bool enabled_;
  bool finished_ = false;
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace forge
