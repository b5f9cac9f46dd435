#include "forge/plan/carried_copy.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "forge/plan/file_io.h"
#include "forge/plan/writer.h"

namespace forge::plan {

Result<std::unique_ptr<CarriedCopy>> CarriedCopy::Open(const std::string& src, const std::string& dst,
                                                       CarriedBytesSink* sink, uint64_t chunk_bytes) {
  std::unique_ptr<CarriedCopy> c(new CarriedCopy);
  c->src_ = src;
  c->dst_ = dst;
  c->sink_ = sink;
  c->in_ = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (c->in_ < 0) return Status::Invalid(std::string("cannot open: ") + std::strerror(errno), src);
  c->out_ = ::open(dst.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (c->out_ < 0) return Status::Invalid(std::string("cannot create: ") + std::strerror(errno), dst);
  struct stat st {};
  if (::fstat(c->in_, &st) != 0)
    return Status::Invalid(std::string("cannot stat: ") + std::strerror(errno), src);
  c->size_ = static_cast<uint64_t>(st.st_size);
  // Whole write calls per range, so a range's reads and writes are the same calls as one job's would be.
  c->chunk_ = std::max<uint64_t>(kWriteCallBytes, chunk_bytes / kWriteCallBytes * kWriteCallBytes);
  c->ranges_ = static_cast<size_t>((c->size_ + c->chunk_ - 1) / c->chunk_);
  c->copied_.assign(c->ranges_, 0);
  return c;
}

CarriedCopy::~CarriedCopy() {
  if (in_ >= 0) ::close(in_);
  if (out_ >= 0) ::close(out_);
}

Status CarriedCopy::Run(size_t job, Progress* progress) {
  if (job < ranges_) return CopyRange(job, progress);
  return Feed();
}

void CarriedCopy::Abort() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
  }
  cv_.notify_all();
}

Status CarriedCopy::CopyRange(size_t range, Progress* progress) {
  thread_local std::vector<uint8_t> read(kWriteCallBytes), back(kWriteCallBytes);
  const uint64_t begin = range * chunk_, end = std::min(size_, begin + chunk_);
  Status st;
  for (uint64_t off = begin; st.ok() && off < end; off += kWriteCallBytes) {
    const uint64_t n = std::min(kWriteCallBytes, end - off);
    bool short_read = false;
    st = PreadAll(in_, read.data(), n, off, src_, &short_read);
    if (st.ok() && short_read) st = Status::Invalid(kSourceShrank, src_);
    if (st.ok()) {
      std::lock_guard<std::mutex> turn(write_turn_);  // writes to one file take turns (writer.cc's OpenShard)
      st = PwriteAll(out_, read.data(), n, off, dst_);
    }
    if (st.ok()) st = PreadAll(out_, back.data(), n, off, dst_, &short_read);
    if (st.ok() && (short_read || std::memcmp(read.data(), back.data(), n) != 0)) {
      st = Status::Invalid(
          fmt::format("bytes read back from the output differ from the source's at bytes {}-{}", off,
                      off + n),
          dst_);
    }
    if (st.ok()) progress->Add(n);
  }
  if (!st.ok()) {
    Abort();
    return st;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    copied_[range] = 1;
  }
  cv_.notify_all();
  return Status();
}

Status CarriedCopy::Feed() {
  thread_local std::vector<uint8_t> buffer(kWriteCallBytes);
  for (size_t range = 0; range < ranges_; ++range) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return copied_[range] != 0 || aborted_; });
      if (aborted_) return Status();  // the job that failed says why
    }
    // Proven equal to the source by its copy job; read back here in order (from the page cache).
    const uint64_t begin = range * chunk_, end = std::min(size_, begin + chunk_);
    for (uint64_t off = begin; off < end; off += kWriteCallBytes) {
      const uint64_t n = std::min(kWriteCallBytes, end - off);
      bool short_read = false;
      FORGE_RETURN_IF_ERROR(PreadAll(out_, buffer.data(), n, off, dst_, &short_read));
      if (short_read) return Status::Invalid("the output file ended early while read back", dst_);
      sink_->Update(buffer.data(), n);
    }
  }
  return Status();
}

Status CarriedCopy::Finish() {
  Status st;
  if (::fsync(out_) != 0 && errno != EINVAL)
    st = Status::Invalid(std::string("fsync failed: ") + std::strerror(errno), dst_);
  const int out = out_;
  out_ = -1;
  if (::close(out) != 0 && st.ok())
    st = Status::Invalid(std::string("cannot write file: ") + std::strerror(errno), dst_);
  return st;
}

}  // namespace forge::plan
