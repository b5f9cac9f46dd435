// Quantize / dequantize throughput of each codec in GB/s of bf16 input (dequantize: of bf16 output), on a
// 4096 x 4096 matrix of Gaussian weights, with 1 thread and with all cores (rows split in blocks).
// Run: build-bench/bench/codec_bench --benchmark_counters_tabular=true
#include <algorithm>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "forge/base/half.h"
#include "forge/base/thread_pool.h"
#include "forge/base/simd16.h"
#include "quantize/codec.h"
#include "quantize/fidelity.h"

namespace forge::quant {
namespace {

constexpr uint64_t kRows = 4096, kCols = 4096;

const std::vector<uint8_t>& Input() {
  static const std::vector<uint8_t> data = [] {
    std::vector<uint8_t> d(kRows * kCols * 2);
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0.0f, 0.02f);
    for (uint64_t i = 0; i < kRows * kCols; ++i) {
      uint16_t h = F32ToBf16(n(rng));
      std::memcpy(d.data() + 2 * i, &h, 2);
    }
    return d;
  }();
  return data;
}

QuantParams ParamsOf(int64_t id) {
  switch (id) {
    case 0: return {QuantMode::kAffine, 4, 64};
    case 1: return {QuantMode::kAffine, 8, 64};
    case 2: return {QuantMode::kAffine, 3, 64};
    case 3: return {QuantMode::kMxfp4, 4, 32};
    case 4: return {QuantMode::kMxfp8, 8, 32};
    default: return {QuantMode::kNvfp4, 4, 16};
  }
}

// Runs fn(row_begin, row_count) over the matrix on `threads` threads.
template <typename Fn>
void ForRowBlocks(ThreadPool* pool, Fn fn) {
  if (pool == nullptr) {
    fn(0, kRows);
    return;
  }
  const uint64_t blocks = pool->size() * 4, per = (kRows + blocks - 1) / blocks;
  (void)pool->RunAll(blocks, [&](size_t b) {
    const uint64_t r0 = b * per;
    if (r0 < kRows) fn(r0, std::min(per, kRows - r0));
    return Status();
  });
}

void BM_Quantize(benchmark::State& state) {
  const QuantParams p = ParamsOf(state.range(0));
  const Rules rules = state.range(1) ? Rules::kMlxCpu : Rules::kMlxGpu;
  std::unique_ptr<ThreadPool> pool;
  if (state.range(2) > 1) pool = std::make_unique<ThreadPool>(static_cast<unsigned>(state.range(2)));
  const auto& in = Input();
  const uint64_t groups = kCols / p.group_size;
  std::vector<uint8_t> packed(kRows * kCols * p.bits / 8), scales(kRows * groups * 2), biases(kRows * groups * 2);
  const uint64_t scale_bytes = p.mode == QuantMode::kAffine ? 2 : 1;
  for (auto _ : state) {
    ForRowBlocks(pool.get(), [&](uint64_t r0, uint64_t n) {
      QuantizeRows(p, rules, DType::kBF16, in.data() + r0 * kCols * 2, n, kCols, packed.data() + r0 * kCols * p.bits / 8,
                   scales.data() + r0 * groups * scale_bytes, biases.data() + r0 * groups * scale_bytes);
    });
    benchmark::DoNotOptimize(packed.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.size()));
  state.SetLabel(std::string(QuantModeName(p.mode)) + ":" + std::to_string(p.bits) + ":" + std::to_string(p.group_size) +
                 (state.range(1) ? " cpu-rules" : " gpu-rules"));
}

void BM_Dequantize(benchmark::State& state) {
  const QuantParams p = ParamsOf(state.range(0));
  std::unique_ptr<ThreadPool> pool;
  if (state.range(2) > 1) pool = std::make_unique<ThreadPool>(static_cast<unsigned>(state.range(2)));
  const auto& in = Input();
  const uint64_t groups = kCols / p.group_size, scale_bytes = p.mode == QuantMode::kAffine ? 2 : 1;
  std::vector<uint8_t> packed(kRows * kCols * p.bits / 8), scales(kRows * groups * 2), biases(kRows * groups * 2),
      out(in.size());
  QuantizeRows(p, Rules::kMlxGpu, DType::kBF16, in.data(), kRows, kCols, packed.data(), scales.data(), biases.data());
  const DType sdt = ScalesDType(p, DType::kBF16);
  for (auto _ : state) {
    ForRowBlocks(pool.get(), [&](uint64_t r0, uint64_t n) {
      DequantizeRows(p, sdt, packed.data() + r0 * kCols * p.bits / 8, scales.data() + r0 * groups * scale_bytes,
                     biases.data() + r0 * groups * scale_bytes, n, kCols, DType::kBF16, out.data() + r0 * kCols * 2);
    });
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
  state.SetLabel(std::string(QuantModeName(p.mode)) + ":" + std::to_string(p.bits) + ":" + std::to_string(p.group_size));
}

// What --report adds per block of rows: the input widened to f32, the codes dequantized into f32 and the
// fidelity sums (quantize_pass.cc's QuantizeBlock), in GB/s of bf16 input; against BM_Quantize of the same
// codec this is the report's CPU cost without the I/O noise of a whole run.
constexpr uint64_t kFidelityChunkElements = 8192;  // as quantize_pass.cc: two f32 copies stay in L1/L2

FORGE_HOT void Widen(const uint8_t* p, uint64_t n, float* out) {  // as quantize_pass.cc's, cloned
  simd::WidenToF32(DType::kBF16, p, static_cast<int64_t>(n), out);
}

void BM_Fidelity(benchmark::State& state) {
  const QuantParams p = ParamsOf(state.range(0));
  const auto& in = Input();
  const uint64_t groups = kCols / p.group_size, scale_bytes = p.mode == QuantMode::kAffine ? 2 : 1;
  std::vector<uint8_t> packed(kRows * kCols * p.bits / 8), scales(kRows * groups * 2), biases(kRows * groups * 2);
  QuantizeRows(p, Rules::kMlxGpu, DType::kBF16, in.data(), kRows, kCols, packed.data(), scales.data(), biases.data());
  const DType sdt = ScalesDType(p, DType::kBF16);
  const uint64_t block_rows = std::max<uint64_t>(1, kFidelityChunkElements / kCols);
  std::vector<float> orig(block_rows * kCols), recon(block_rows * kCols);
  for (auto _ : state) {
    FidelityAccumulator acc;
    for (uint64_t r0 = 0; r0 < kRows; r0 += block_rows) {
      const uint64_t n = std::min(block_rows, kRows - r0);
      Widen(in.data() + r0 * kCols * 2, n * kCols, orig.data());
      DequantizeRows(p, sdt, packed.data() + r0 * kCols * p.bits / 8, scales.data() + r0 * groups * scale_bytes,
                     biases.data() + r0 * groups * scale_bytes, n, kCols, DType::kF32,
                     reinterpret_cast<uint8_t*>(recon.data()));
      acc.Add(orig.data(), recon.data(), n * kCols);
    }
    benchmark::DoNotOptimize(acc.Result().cosine);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.size()));
  state.SetLabel(std::string(QuantModeName(p.mode)) + ":" + std::to_string(p.bits) + ":" + std::to_string(p.group_size));
}

void Args(benchmark::internal::Benchmark* b, bool with_rules) {
  const int64_t all = static_cast<int64_t>(DefaultThreadCount());
  for (int64_t codec = 0; codec < 6; ++codec) {
    for (int64_t rules = 0; rules < (with_rules ? 2 : 1); ++rules) {
      for (int64_t threads : {int64_t{1}, all}) {
        b->Args({codec, rules, threads});
        if (all == 1) break;
      }
    }
  }
  b->ArgNames({"codec", "cpu_rules", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Quantize)->Apply([](benchmark::internal::Benchmark* b) { Args(b, true); });
BENCHMARK(BM_Dequantize)->Apply([](benchmark::internal::Benchmark* b) { Args(b, false); });
BENCHMARK(BM_Fidelity)->Apply([](benchmark::internal::Benchmark* b) {
  for (int64_t codec = 0; codec < 6; ++codec) b->Args({codec});
  b->ArgNames({"codec"})->Unit(benchmark::kMillisecond)->UseRealTime();
});

}  // namespace
}  // namespace forge::quant

BENCHMARK_MAIN();
