// The reference decoder against the memory roofline: plain greedy tokens/s vs (memory bandwidth measured
// in the same run) / (weight bytes one token reads), and the cost of an MTP verify pass relative to one
// plain step (weights read once for all tokens: close to 1x, not k+1x, when bandwidth-bound).
//
// Usage: decoder_roofline CHECKPOINT [TOKENS=8] [THREADS=0]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "forge/base/thread_pool.h"
#include "verify/model/affine_rows.h"
#include "verify/model/decoder.h"
#include "verify/spec/speculative.h"

// GCC 12's AVX-512 reduce intrinsics pass an undefined merge operand its own -Wuninitialized reports.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

using namespace forge;
using namespace forge::verify;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Read bandwidth over a buffer far larger than the caches, all threads, best of 5.
double ReadBandwidth(ThreadPool& pool) {
  const size_t n = (1ull << 30) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  std::iota(buf.begin(), buf.end(), 1);
  std::vector<uint64_t> sums(pool.size());
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = Now();
    ParallelFor(&pool, pool.size(), [&](size_t c) {
      const size_t b = n * c / pool.size(), e = n * (c + 1) / pool.size();
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (size_t i = b; i + 4 <= e; i += 4)
        s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
      sums[c] = s0 + s1 + s2 + s3;
    });
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / (Now() - t0));
  }
  const uint64_t total = std::accumulate(sums.begin(), sums.end(), uint64_t{0});
  __asm__ volatile("" : : "r"(total) : "memory");  // keeps the reads from being optimized away
  return best;
}

// kIters x kChains dependent-free 16-lane FMAs: 12 independent chains (more than latency x throughput).
constexpr int kChains = 12;
constexpr long kIters = 20'000'000;
__attribute__((target("avx512f,fma"))) float FmaChains() {
  __m512 a[kChains];
  for (int j = 0; j < kChains; ++j) a[j] = _mm512_set1_ps(static_cast<float>(j));
  const __m512 m = _mm512_set1_ps(0.999f), k = _mm512_set1_ps(0.001f);
  for (long i = 0; i < kIters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) {
      a[j] = _mm512_fmadd_ps(a[j], m, k);
      __asm__("" : "+v"(a[j]));  // one FMA per chain per iteration, nothing folded
    }
  }
  __m512 s = a[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, a[j]);
  return _mm512_reduce_add_ps(s);
}

// Peak 16-lane FMAs per second on all threads, best of 3. The affine kernel needs one per 16 weights
// whatever else it does, so this bounds it from above the way bandwidth does.
double FmaPeak(ThreadPool& pool) {
  std::vector<float> sink(pool.size());
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const double t0 = Now();
    ParallelFor(&pool, pool.size(), [&](size_t c) { sink[c] = FmaChains(); });
    best = std::max(best, static_cast<double>(kIters) * kChains * pool.size() / (Now() - t0));
  }
  __asm__ volatile("" : : "r"(sink.data()) : "memory");
  return best;
}

// What one token reads of every matrix (bytes or elements, as `size` says): all of the dense layers, the
// top-k share of each MoE layer's experts, and the LM head.
template <typename Size>
uint64_t PerToken(const model::ModelWeights& w, Size size) {
  auto mlp = [&](const model::MlpWeights& m) { return size(m.gate) + size(m.up) + size(m.down); };
  uint64_t total = size(w.lm_head);
  for (const auto& L : w.layers) {
    if (L.full_attention) {
      total += size(L.attn.q) + size(L.attn.k) + size(L.attn.v) + size(L.attn.o);
    } else {
      total += size(L.gdn.qkv) + size(L.gdn.z) + size(L.gdn.b) + size(L.gdn.a) + size(L.gdn.out);
    }
    if (!L.moe) {
      total += mlp(L.mlp);
      continue;
    }
    uint64_t experts = 0;
    for (const auto& e : L.moe_w.experts) experts += mlp(e);
    total += size(L.moe_w.router) + mlp(L.moe_w.shared) + size(L.moe_w.shared_gate) +
             experts * static_cast<uint64_t>(w.geo.experts_per_tok) / static_cast<uint64_t>(w.geo.experts);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: decoder_roofline CHECKPOINT [TOKENS=8] [THREADS=0]\n");
    return 64;
  }
  const int tokens = argc > 2 ? std::atoi(argv[2]) : 8;
  ThreadPool pool(argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 0);
  auto ckpt = Checkpoint::Open(argv[1]);
  if (!ckpt.ok()) return std::fprintf(stderr, "%s\n", ckpt.status().ToString().c_str()), 1;
  auto w = model::LoadModelWeights(**ckpt);
  if (!w.ok()) return std::fprintf(stderr, "%s\n", w.status().ToString().c_str()), 1;
  const uint64_t per_token = PerToken(*w, [](const model::Matrix& m) { return m.bytes(); });
  const uint64_t weights = PerToken(
      *w, [](const model::Matrix& m) { return m.empty() ? 0 : static_cast<uint64_t>(m.rows() * m.cols()); });
  const double bw = ReadBandwidth(pool);
  const double roofline = bw / static_cast<double>(per_token);
  const double fma = model::CpuHasAvx512() ? FmaPeak(pool) : 0;

  model::Decoder dec(*w, &pool);
  model::MtpHead mtp(*w, &pool);
  const std::vector<int64_t> prompt = {9707, 11, 1879, 0};
  spec::DecodeOptions o;
  o.max_tokens = tokens;
  // Warm the page cache (the first pass may read from disk), then measure.
  (void)spec::PlainGreedy(dec, prompt, {.max_tokens = 2});
  const spec::PlainResult plain = spec::PlainGreedy(dec, prompt, o);
  const double plain_tps = static_cast<double>(plain.tokens.size() - 1) / plain.decode_seconds;
  double mtp_tps = 0, verify_ratio = 0;
  if (w->has_mtp) {
    const spec::SpecResult s = spec::SpeculativeGreedy(dec, mtp, prompt, o);
    mtp_tps = static_cast<double>(s.tokens.size()) / s.decode_seconds;
    // One 2-token verify pass vs one 1-token step from the same state, best of 5 each.
    model::DecoderState st = dec.NewState();
    model::ForwardOutput out;
    dec.Forward(prompt, st, model::LogitsFor::kLast, out);
    double one = 1e30, two = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      model::DecoderState a = st, b = st;
      double t0 = Now();
      dec.Forward({5}, a, model::LogitsFor::kAll, out);
      one = std::min(one, Now() - t0);
      model::GdnSnapshots snaps;
      t0 = Now();
      dec.Forward({5, 6}, b, model::LogitsFor::kAll, out, &snaps);
      two = std::min(two, Now() - t0);
    }
    verify_ratio = two / one;
  }
  std::printf("checkpoint: %s (%s%s)\n", argv[1], w->format.c_str(), w->quantized ? ", quantized" : "");
  std::printf("threads: %u, affine kernel: %s\n", pool.size(), model::AffineKernelName(model::AffineKernel::kBest));
  std::printf("memory read bandwidth: %.2f GB/s\n", bw / 1e9);
  std::printf("weight bytes per token: %.3f GB\n", static_cast<double>(per_token) / 1e9);
  std::printf("roofline: %.2f tokens/s\n", roofline);
  if (fma > 0) {
    std::printf("FMA peak: %.2f G 16-lane FMA/s = compute ceiling %.2f tokens/s (%.2f G weights per token)\n",
                fma / 1e9, fma * 16 / static_cast<double>(weights), static_cast<double>(weights) / 1e9);
  }
  std::printf("plain greedy: %.2f tokens/s = %.0f%% of roofline\n", plain_tps, 100 * plain_tps / roofline);
  if (w->has_mtp) {
    std::printf("MTP depth 1: %.2f tokens/s; a 2-token verify pass costs %.2fx one plain step\n", mtp_tps,
                verify_ratio);
  }
  return 0;
}
