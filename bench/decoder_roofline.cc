// The reference decoder against the memory roofline: plain greedy tokens/s vs (memory bandwidth measured
// in the same run) / (weight bytes one token reads), and the cost of an MTP verify pass relative to one
// plain step (weights read once for all tokens: close to 1x, not k+1x, when bandwidth-bound).
//
// Usage: decoder_roofline CHECKPOINT [TOKENS=8] [THREADS=0]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "forge/base/thread_pool.h"
#include "verify/model/decoder.h"
#include "verify/spec/speculative.h"

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
    Status st = pool.RunAll(pool.size(), [&](size_t c) {
      const size_t b = n * c / pool.size(), e = n * (c + 1) / pool.size();
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (size_t i = b; i + 4 <= e; i += 4)
        s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
      sums[c] = s0 + s1 + s2 + s3;
      return Status();
    });
    (void)st;
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / (Now() - t0));
  }
  const uint64_t total = std::accumulate(sums.begin(), sums.end(), uint64_t{0});
  __asm__ volatile("" : : "r"(total) : "memory");  // keeps the reads from being optimized away
  return best;
}

uint64_t Mlp(const model::MlpWeights& m) { return m.gate.bytes() + m.up.bytes() + m.down.bytes(); }

uint64_t LayerBytes(const model::LayerWeights& L, const model::Geometry& g) {
  uint64_t b = 0;
  if (L.full_attention) {
    b += L.attn.q.bytes() + L.attn.k.bytes() + L.attn.v.bytes() + L.attn.o.bytes();
  } else {
    b += L.gdn.qkv.bytes() + L.gdn.z.bytes() + L.gdn.b.bytes() + L.gdn.a.bytes() + L.gdn.out.bytes();
  }
  if (!L.moe) return b + Mlp(L.mlp);
  // Per token only the top-k experts are read: k/E of the expert bytes on average.
  uint64_t experts = 0;
  for (const auto& e : L.moe_w.experts) experts += Mlp(e);
  return b + L.moe_w.router.bytes() + Mlp(L.moe_w.shared) + L.moe_w.shared_gate.bytes() +
         experts * static_cast<uint64_t>(g.experts_per_tok) / static_cast<uint64_t>(g.experts);
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
  uint64_t per_token = w->lm_head.bytes();
  for (const auto& L : w->layers) per_token += LayerBytes(L, w->geo);
  const double bw = ReadBandwidth(pool);
  const double roofline = bw / static_cast<double>(per_token);

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
    // One 2-token verify pass vs one 1-token step, same state.
    model::DecoderState st = dec.NewState();
    model::ForwardOutput out;
    dec.Forward(prompt, st, model::LogitsFor::kLast, out);
    model::DecoderState a = st, b = st;
    double t0 = Now();
    dec.Forward({5}, a, model::LogitsFor::kAll, out);
    const double one = Now() - t0;
    model::GdnSnapshots snaps;
    t0 = Now();
    dec.Forward({5, 6}, b, model::LogitsFor::kAll, out, &snaps);
    verify_ratio = (Now() - t0) / one;
  }
  std::printf("checkpoint: %s (%s%s)\n", argv[1], w->format.c_str(), w->quantized ? ", quantized" : "");
  std::printf("threads: %u\n", pool.size());
  std::printf("memory read bandwidth: %.2f GB/s\n", bw / 1e9);
  std::printf("weight bytes per token: %.3f GB\n", static_cast<double>(per_token) / 1e9);
  std::printf("roofline: %.2f tokens/s\n", roofline);
  std::printf("plain greedy: %.2f tokens/s = %.0f%% of roofline\n", plain_tps, 100 * plain_tps / roofline);
  if (w->has_mtp) {
    std::printf("MTP depth 1: %.2f tokens/s; a 2-token verify pass costs %.2fx one plain step\n", mtp_tps,
                verify_ratio);
  }
  return 0;
}
