// The reference decoder's affine 4-bit matrix-vector kernel in GB/s of weights read (codes + scales +
// biases), on a matrix larger than the last-level cache (32768 x 2560: 47 MB), for 1, 2 and 4 tokens per
// pass (a 1-token step, MTP verify passes), 1 thread and all, the best kernel this CPU has and the portable
// one. Compare with the machine's read bandwidth (decoder_roofline prints it).
// Run: build-bench/bench/matmul_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "forge/base/thread_pool.h"
#include "verify/model/affine_rows.h"
#include "verify/model/matmul.h"

namespace forge::verify::model {
namespace {

constexpr int64_t kRows = 32768, kCols = 2560, kGroup = 64;

struct Weights {
  std::vector<uint8_t> codes, scales, biases;
  Matrix m;
};

const Weights& Data() {
  static const Weights w = [] {
    Weights o;
    std::mt19937 rng(1);
    o.codes.resize(kRows * kCols / 2);
    for (uint8_t& b : o.codes) b = static_cast<uint8_t>(rng());
    o.scales.resize(kRows * kCols / kGroup * 2);
    o.biases.resize(o.scales.size());
    for (size_t i = 0; i < o.scales.size(); i += 2) {  // bf16 around 0.01 and -0.1
      o.scales[i] = 0, o.scales[i + 1] = 0x3c;
      o.biases[i] = 0, o.biases[i + 1] = 0xbd;
    }
    Matrix::Quantized q{{quant::QuantMode::kAffine, 4, static_cast<int>(kGroup)},
                        DType::kBF16,
                        o.scales.data(),
                        o.biases.data()};
    o.m = Matrix::Packed("bench", o.codes.data(), q, kRows, kCols);
    return o;
  }();
  return w;
}

void BM_Affine4(benchmark::State& state) {
  const int tokens = static_cast<int>(state.range(0));
  const bool all_threads = state.range(1) != 0;
  SetAffineKernel(state.range(2) != 0 ? AffineKernel::kBest : AffineKernel::kPortable);
  const Weights& w = Data();
  ThreadPool pool(0);
  MatMul mm(all_threads ? &pool : nullptr);
  std::vector<std::vector<float>> x(tokens, std::vector<float>(kCols, 0.5f)),
      y(tokens, std::vector<float>(kRows));
  std::vector<const float*> xs;
  std::vector<float*> ys;
  for (int t = 0; t < tokens; ++t) xs.push_back(x[t].data()), ys.push_back(y[t].data());
  for (auto _ : state) {
    mm.Run(w.m, xs, ys);
    benchmark::DoNotOptimize(y[0][0]);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.m.bytes()));
  state.counters["threads"] = all_threads ? pool.size() : 1;
  SetAffineKernel(AffineKernel::kBest);
}

BENCHMARK(BM_Affine4)
    ->ArgNames({"tokens", "all_threads", "best"})
    ->ArgsProduct({{1, 2, 4}, {0, 1}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace forge::verify::model

BENCHMARK_MAIN();
