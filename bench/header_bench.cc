// safetensors header parsing against the tensor count (1k .. 1M tensors in one file): the time per tensor
// must stay flat (linear parsing). Also the index and the whole `Checkpoint::Open` for many shards.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstring>
#include <string>

#include "forge/st/header.h"

namespace {

// An 8-byte length, a header of `n` one-byte U8 tensors (short names: 1M of them stay under the 100 MB
// header limit), and the data.
std::string HeaderBytes(int64_t n) {
  std::string h = "{\"__metadata__\":{\"format\":\"pt\"}";
  for (int64_t i = 0; i < n; ++i) {
    h += fmt::format(
        ",\"layers.{}.experts.{}.w\":"
        "{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[{},{}]}}",
        i / 256, i % 256, i, i + 1);
  }
  h += "}";
  std::string bytes(8, '\0');
  const uint64_t len = h.size();
  std::memcpy(bytes.data(), &len, 8);
  return bytes + h + std::string(static_cast<size_t>(n), '\0');
}

void BM_ParseHeader(benchmark::State& state) {
  const std::string bytes = HeaderBytes(state.range(0));
  for (auto _ : state) {
    auto h =
        forge::st::ParseHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size());
    if (!h.ok()) state.SkipWithError(h.status().ToString().c_str());
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // tensors/s: flat when linear
  state.counters["header_MB"] = static_cast<double>(bytes.size()) / 1e6;
}
BENCHMARK(BM_ParseHeader)->RangeMultiplier(10)->Range(1000, 1000000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
