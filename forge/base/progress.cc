#include "forge/base/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace forge {

bool Progress::StderrIsTty() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)), total_(total_bytes), enabled_(enabled && StderrIsTty()) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { Finish(); }

void Progress::Add(uint64_t bytes) {
  done_ += bytes;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;  // at most 10 redraws a second
  last_draw_ = now;
  Draw(false);
}

void Progress::Finish() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void Progress::Draw(bool final_line) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double done = static_cast<double>(done_.load());
  double pct = total_ ? 100.0 * done / static_cast<double>(total_) : 100.0;
  double rate = secs > 0 ? done / secs / 1e6 : 0.0;
  std::fputs(fmt::format("\r{}  {:.2f}/{:.2f} GB  {:3.0f}%  {:.0f} MB/s{}", label_, done / 1e9,
                         static_cast<double>(total_) / 1e9, pct, rate, final_line ? "\n" : "")
                 .c_str(),
             stderr);
  std::fflush(stderr);
}

}  // namespace forge
