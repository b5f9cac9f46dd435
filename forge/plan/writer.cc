#include "forge/plan/writer.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <variant>

#include <fmt/format.h>

#include "forge/base/fs_util.h"
#include "forge/base/progress.h"
#include "forge/base/thread_pool.h"
#include "forge/plan/evaluate.h"
#include "forge/plan/evaluate_range.h"

namespace forge::plan {
namespace {
namespace fs = std::filesystem;

// Bytes of materialized tensors in flight. A request larger than the budget proceeds when nothing else is
// in flight, so one huge tensor never deadlocks the writer.
class ByteBudget {
 public:
  explicit ByteBudget(uint64_t cap) : cap_(cap) {}
  void Acquire(uint64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return used_ == 0 || used_ + n <= cap_; });
    used_ += n;
  }
  void Release(uint64_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      used_ -= n;
    }
    cv_.notify_all();
  }

 private:
  uint64_t cap_, used_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
};

// Bytes per write call. Measured on ext4 (Linux 6.18, page cache warm): one 16 MB pwrite moves 0.3-0.5 GB/s,
// the same bytes in 256 KB calls 1-2 GB/s (the kernel's copy into the page cache is what costs, and its
// source then stays in the core's cache). scripts/bench.sh shows the whole-process effect.
constexpr uint64_t kWriteCallBytes = 256u << 10;

Status PwriteAll(int fd, const uint8_t* data, uint64_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      // From a mapping that lost the pages being copied (where a load would raise SIGBUS): the caller
      // names the source.
      if (errno == EFAULT) return Status::Invalid(kSourceShrank);
      return Status::Invalid(std::string("write failed: ") + std::strerror(errno), path);
    }
    data += w;
    n -= static_cast<uint64_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status();
}

// An output file being written. Its writes take turns: ext4 serializes buffered writes to one file on the
// inode lock, and threads that meet there spin on it (perf: 29 % of a 2-thread convert), while a thread
// that waits here sleeps and leaves the core to one that computes or writes another shard.
struct OpenShard {
  int fd = -1;
  std::string path;
  uint64_t data_start = 0;
  mutable std::mutex write_turn;

  Status Write(const uint8_t* data, uint64_t n, uint64_t offset) const {
    for (uint64_t done = 0; done < n; done += kWriteCallBytes) {
      const uint64_t k = std::min(kWriteCallBytes, n - done);
      std::lock_guard<std::mutex> turn(write_turn);
      FORGE_RETURN_IF_ERROR(PwriteAll(fd, data + done, k, offset + done, path));
    }
    return Status();
  }
};

// One job: elements [begin, end) of one planned tensor, written at its place in the shard. Plain copies
// stream from the mapping; computed tensors are evaluated over the range only (evaluate_range.h), so a
// tensor of any size costs a chunk of memory and its chunks run on all threads.
struct Piece {
  const PlannedTensor* tensor;
  const st::TensorInfo* slot;
  const OpenShard* shard;
  uint64_t begin, end;  // elements
};

Status WritePiece(const Piece& p, ByteBudget* budget, Progress* progress) {
  const Expr& e = *p.tensor->expr;
  const uint64_t es = static_cast<uint64_t>(DTypeBits(e.meta.dtype)) / 8;
  const uint64_t offset = p.shard->data_start + p.slot->begin + p.begin * es, bytes = (p.end - p.begin) * es;
  if (e.IsPlainCopy()) {
    // Through a buffer that stays in the core's cache: pread then pwrite (see kWriteCallBytes).
    thread_local std::vector<uint8_t> buffer(kWriteCallBytes);
    const uint64_t src_off = e.source.file->header().data_start + e.source.info->begin + p.begin * es;
    e.source.file->WillNeedRange(src_off, bytes);  // the piece (up to 64 MB) in large reads, ahead of ours
    for (uint64_t done = 0; done < bytes;) {
      const uint64_t n = std::min(kWriteCallBytes, bytes - done);
      Status st = e.source.file->ReadRange(src_off + done, buffer.data(), n);
      if (!st.ok()) return Status::Invalid(st.message(), e.source.file->path(), e.source.info->name);
      FORGE_RETURN_IF_ERROR(p.shard->Write(buffer.data(), n, offset + done));
      done += n;
      progress->Add(n);
    }
    e.source.file->ReleaseRange(src_off, bytes);  // pages the mapping touched, if any (no descriptor kept)
    return Status();
  }
  const uint64_t need = EstimatePieceBytes(e, p.end - p.begin);
  budget->Acquire(need);
  std::vector<SourceSpan> read;
  Status st;
  // An expression that splits is computed a write call's worth at a time (whole granules), each range
  // written while it is still in cache; one that does not, whole.
  const uint64_t granule = SplitGranule(e);
  const uint64_t step = granule == 0 ? p.end - p.begin
                                     : std::max<uint64_t>(1, kWriteCallBytes / std::max<uint64_t>(1, es) / granule) * granule;
  for (uint64_t b = p.begin; st.ok() && b < p.end; b += step) {
    const uint64_t end = std::min(p.end, b + step);
    Result<Tensor> value = EvaluateRange(e, b, end, &read);  // freed before the budget says so
    if (!value.ok()) {
      st = value.status();
    } else if (value->meta.nbytes() != (end - b) * es) {
      st = Status::Invalid("materialized size differs from the plan", {}, p.tensor->name);
    } else {
      st = p.shard->Write(value->data, (end - b) * es, offset + (b - p.begin) * es);
      if (st.ok()) progress->Add((end - b) * es);
    }
  }
  budget->Release(need);
  ReleaseSpans(read);
  if (!st.ok()) {
    return Status::Error(st.code(), st.message(), st.file(), st.tensor().empty() ? p.tensor->name : st.tensor());
  }
  return Status();
}

// The pieces of one tensor: chunks of about `chunk` bytes where the expression splits, else one piece.
void AddPieces(const PlannedTensor& t, const st::TensorInfo& slot, const OpenShard& shard, uint64_t chunk,
               std::vector<Piece>* out) {
  const Expr& e = *t.expr;
  const uint64_t numel = e.meta.numel(), es = std::max<uint64_t>(1, static_cast<uint64_t>(DTypeBits(e.meta.dtype)) / 8);
  const uint64_t granule = e.meta.nbytes() > chunk ? SplitGranule(e) : 0;
  if (granule == 0) {
    out->push_back({&t, &slot, &shard, 0, numel});
    return;
  }
  for (const auto& [b, end] : SplitRanges(numel, granule, chunk / es)) out->push_back({&t, &slot, &shard, b, end});
}

// Pieces in file order, except that the parts of one shared computation (CustomOp::SharedComputation)
// move up to the first of them: a layout sorted by dtype puts a quantized weight's codes far from its
// scales, and holding every module's results until the scales come would cost memory with the model.
std::vector<Piece> GroupSharedComputations(std::vector<Piece> pieces) {
  std::map<const void*, std::vector<Piece>> shared;
  std::vector<std::variant<Piece, const void*>> order;
  for (const Piece& p : pieces) {
    const Expr& e = *p.tensor->expr;
    const void* key = e.kind == OpKind::kCustom ? e.custom->SharedComputation() : nullptr;
    if (key == nullptr) {
      order.emplace_back(p);
      continue;
    }
    auto& group = shared[key];
    if (group.empty()) order.emplace_back(key);
    group.push_back(p);
  }
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (const auto& o : order) {
    if (const Piece* single = std::get_if<Piece>(&o)) {
      out.push_back(*single);
    } else {
      for (const Piece& part : shared[std::get<const void*>(o)]) out.push_back(part);
    }
  }
  return out;
}

}  // namespace

std::string DumpJson(const nlohmann::json& j) { return j.dump(2) + "\n"; }

nlohmann::json BuildIndex(const std::vector<ShardPlan>& shards) {
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (const auto& s : shards) {
    for (const auto& t : s.layout) {
      weight_map[t.name] = s.file_name;
      total += t.nbytes();
    }
  }
  return {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
}

namespace {

// The file itself, never a link to it: a hub-cache snapshot's relative link copied or hard-linked as a
// link would point nowhere from the output.
Result<std::string> ResolvedSource(const std::string& src_path) {
  std::error_code ec;
  std::string src = fs::canonical(src_path, ec).string();
  if (ec) return Status::Invalid("cannot resolve: " + ec.message(), src_path);
  return src;
}

// Hard link, else reflink (FICLONE). False when neither works here (then the file is copied).
bool ShareFile(const std::string& src, const std::string& dst) {
  if (::link(src.c_str(), dst.c_str()) == 0) return true;
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool cloned = in >= 0 && out >= 0 && ::ioctl(out, FICLONE, in) == 0;
  if (in >= 0) ::close(in);
  if (out >= 0) ::close(out);
  if (!cloned) ::unlink(dst.c_str());
  return cloned;
}

// A carried file copied a write call at a time: read from the source, written, read back from the output
// and compared, then handed to `sink`. The output is proven equal to the source in the same pass (a later
// check or hash would read every byte again), at the cost of one more copy out of the page cache.
Status CopyVerified(const std::string& src, const std::string& dst, CarriedBytesSink* sink, Progress* progress) {
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::Invalid(std::string("cannot open: ") + std::strerror(errno), src);
  const int out = ::open(dst.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    ::close(in);
    return Status::Invalid(std::string("cannot create: ") + std::strerror(errno), dst);
  }
  struct stat st_in {};
  Status st = ::fstat(in, &st_in) == 0 ? Status() : Status::Invalid(std::string("cannot stat: ") + std::strerror(errno), src);
  const uint64_t size = static_cast<uint64_t>(st_in.st_size);
  thread_local std::vector<uint8_t> read(kWriteCallBytes), back(kWriteCallBytes);
  for (uint64_t off = 0; st.ok() && off < size; off += kWriteCallBytes) {
    const uint64_t n = std::min(kWriteCallBytes, size - off);
    bool short_read = false;
    st = PreadAll(in, read.data(), n, off, src, &short_read);
    if (st.ok() && short_read) st = Status::Invalid(kSourceShrank, src);
    if (st.ok()) st = PwriteAll(out, read.data(), n, off, dst);
    if (st.ok()) st = PreadAll(out, back.data(), n, off, dst, &short_read);
    if (st.ok() && (short_read || std::memcmp(read.data(), back.data(), n) != 0)) {
      st = Status::Invalid(fmt::format("bytes read back from the output differ from the source's at bytes {}-{}", off, off + n), dst);
    }
    if (!st.ok()) break;
    if (sink != nullptr) sink->Update(back.data(), n);
    progress->Add(n);
  }
  if (st.ok() && ::fsync(out) != 0 && errno != EINVAL) st = Status::Invalid(std::string("fsync failed: ") + std::strerror(errno), dst);
  ::close(in);
  if (::close(out) != 0 && st.ok()) st = Status::Invalid(std::string("cannot write file: ") + std::strerror(errno), dst);
  return st;
}

}  // namespace

Result<WriteReport> WriteLayout(const Plan& plan, const OutputLayout& layout, const std::string& out_dir,
                                const WriteOptions& options, bool link, LinkReport* link_report) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<ShardPlan>& shards = layout.new_shards;
  FORGE_ASSIGN_OR_RETURN(StagedDir staged, StagedDir::Create(out_dir, options.force, options.sources));

  std::vector<OpenShard> open(shards.size());
  WriteReport report;
  report.out_dir = staged.final_path();
  auto close_all = [&] {
    for (auto& o : open) if (o.fd >= 0) ::close(o.fd);
  };
  for (size_t s = 0; s < shards.size(); ++s) {
    OpenShard& o = open[s];
    o.path = (fs::path(staged.temp_path()) / shards[s].file_name).string();
    o.fd = ::open(o.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o.fd < 0) {
      close_all();
      return Status::Invalid(std::string("cannot create: ") + std::strerror(errno), o.path);
    }
    o.data_start = shards[s].header.size();
    Status st = PwriteAll(o.fd, reinterpret_cast<const uint8_t*>(shards[s].header.data()), shards[s].header.size(), 0, o.path);
    if (st.ok() && ::ftruncate(o.fd, static_cast<off_t>(shards[s].file_size())) != 0) {
      st = Status::Invalid(std::string("cannot size file: ") + std::strerror(errno), o.path);
    }
    if (!st.ok()) {
      close_all();
      return st;
    }
    report.shards.emplace_back(shards[s].file_name, shards[s].file_size());
    report.file_bytes += shards[s].file_size();
    for (const auto& t : shards[s].layout) report.tensor_bytes += t.nbytes();
  }

  std::vector<Piece> pieces;
  for (size_t s = 0; s < shards.size(); ++s) {
    for (size_t i = 0; i < shards[s].layout.size(); ++i) {
      AddPieces(plan.tensors[shards[s].plan_index[i]], shards[s].layout[i], open[s], options.chunk_bytes, &pieces);
    }
  }
  pieces = GroupSharedComputations(std::move(pieces));

  // Carried files: shared with the source where asked and possible, else copied below with the new shards.
  const fs::path tmp(staged.temp_path());
  LinkReport links;
  struct CarriedCopy {
    std::string src, dst;
    CarriedBytesSink* sink;
  };
  std::vector<CarriedCopy> copies;
  uint64_t copy_bytes = 0;
  for (const auto& c : layout.carried) {
    FORGE_ASSIGN_OR_RETURN(const std::string src, ResolvedSource(c.source_path));
    const std::string dst = (tmp / c.name).string();
    std::error_code ec;
    const uint64_t size = fs::file_size(src, ec);
    const bool shared = link && ShareFile(src, dst);
    (shared ? links.linked : links.copied) += 1;
    links.carried_bytes += size;
    if (!shared) {
      links.copied_bytes += size;
      copy_bytes += size;
      copies.push_back({src, dst, options.carried_sink ? options.carried_sink(c) : nullptr});
    }
    report.shards.emplace_back(c.name, size);
    report.file_bytes += size;
  }
  if (link_report) *link_report = links;
  {
    ByteBudget budget(options.memory_budget);
    Progress progress("writing", report.tensor_bytes + copy_bytes, options.progress);
    ThreadPool pool(options.threads);
    // The copies first: each is one long sequential job, the pieces fill the other threads around them.
    Status st = pool.RunAll(copies.size() + pieces.size(), [&](size_t j) {
      if (j < copies.size()) return CopyVerified(copies[j].src, copies[j].dst, copies[j].sink, &progress);
      return WritePiece(pieces[j - copies.size()], &budget, &progress);
    });
    for (auto& o : open) {
      if (st.ok() && ::fsync(o.fd) != 0) st = Status::Invalid(std::string("fsync failed: ") + std::strerror(errno), o.path);
    }
    close_all();
    if (!st.ok()) return st;
    progress.Finish();
  }

  if (layout.index) FORGE_RETURN_IF_ERROR(WriteTextFile((tmp / kIndexFileName).string(), DumpJson(*layout.index)));
  if (options.config) FORGE_RETURN_IF_ERROR(WriteTextFile((tmp / "config.json").string(), DumpJson(*options.config)));
  for (const auto& [src, name] : options.copy_files) {
    FORGE_RETURN_IF_ERROR(CopyFileTo(src, (tmp / name).string()));
  }
  if (options.before_commit) FORGE_RETURN_IF_ERROR(options.before_commit(staged.temp_path()));
  FORGE_RETURN_IF_ERROR(staged.Commit());
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

void AddSource(const Checkpoint& ckpt, Sources* sources) {
  sources->dirs.push_back(ckpt.dir());
  for (auto& f : ckpt.Files()) sources->files.push_back(std::move(f));
}

WriteOptions DerivedFrom(const Checkpoint& src) {
  WriteOptions w;
  AddSource(src, &w.sources);
  for (const auto& f : src.aux_files()) w.copy_files.emplace_back((fs::path(src.dir()) / f).string(), f);
  return w;
}

nlohmann::json WriteReportJson(const WriteReport& report) {
  nlohmann::json j = {{"out", report.out_dir}, {"tensor_bytes", report.tensor_bytes}, {"file_bytes", report.file_bytes},
                      {"seconds", report.seconds}, {"shards", nlohmann::json::array()}};
  for (const auto& [name, bytes] : report.shards) j["shards"].push_back({{"file", name}, {"bytes", bytes}});
  return j;
}

Result<WriteReport> WritePlan(const Plan& plan, const std::string& out_dir, const WriteOptions& options) {
  OutputLayout layout;
  FORGE_ASSIGN_OR_RETURN(layout.new_shards, LayoutShards(plan, options.max_shard_size, options.metadata));
  if (layout.new_shards.size() > 1) layout.index = BuildIndex(layout.new_shards);
  return WriteLayout(plan, layout, out_dir, options, false, nullptr);
}

}  // namespace forge::plan
