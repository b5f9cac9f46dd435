#include "verify/model/layers.h"

#include <algorithm>
#include <numeric>

namespace forge::verify::model {

std::vector<float*> Rows::ptrs() {
  std::vector<float*> p(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) p[static_cast<size_t>(t)] = at(t);
  return p;
}

std::vector<const float*> Rows::cptrs() const {
  std::vector<const float*> p(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) p[static_cast<size_t>(t)] = at(t);
  return p;
}

GdnState EmptyGdnState(const Geometry& g) {
  GdnState s;
  s.conv.assign(static_cast<size_t>((g.conv_kernel - 1) * g.conv_channels()), 0.0f);
  s.ssm.assign(static_cast<size_t>(g.v_heads * g.k_dim * g.v_dim), 0.0f);
  return s;
}

void KvCache::Truncate(int64_t positions) {
  if (positions < size()) {
    k.resize(static_cast<size_t>(positions * width));
    v.resize(static_cast<size_t>(positions * width));
  }
}

void ApplyRope(float* head, int64_t rope_dims, double theta, int64_t position) {
  // transformers: inv_freq = 1 / theta^(2i/dim) in f32, angle = inv_freq * position in f32, rotate-half pairs
  // (i, i + dim/2) inside the first dim entries; the rest pass through.
  const int64_t half = rope_dims / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rope_dims);
    const float inv_freq = 1.0f / std::pow(static_cast<float>(theta), exponent);
    const float angle = inv_freq * static_cast<float>(position);
    const float c = std::cos(angle), s = std::sin(angle);
    const float a = head[i], b = head[i + half];
    head[i] = a * c - b * s;
    head[i + half] = b * c + a * s;
  }
}

namespace {

struct GdnHeadInput {
  const float* k;  // [Dk], l2-normalized
  const float* q;  // [Dk], l2-normalized and scaled
  const float* v;  // [Dv]
  float beta, decay;
};

// One position of one head's delta rule on its state S [Dk][Dv]:
//   S *= decay; kv_mem = S^T k; delta = (v - kv_mem) * beta; S += k delta^T; o = S^T q.
// Sums over i run in double in ascending i for every j; the loops run i outer, j inner so they stream S by
// rows and vectorize over j (the same sums, in the same order, as a j-outer loop).
void GdnHeadStep(const GdnHeadInput& in, int64_t Dk, int64_t Dv, float* S, float* o) {
  std::vector<double> acc(static_cast<size_t>(Dv), 0.0);
  std::vector<float> delta(static_cast<size_t>(Dv));
  for (int64_t i = 0; i < Dk; ++i) {
    float* row = S + i * Dv;
    const double ki = in.k[i];
    for (int64_t j = 0; j < Dv; ++j) {
      row[j] *= in.decay;
      acc[j] += static_cast<double>(row[j]) * ki;
    }
  }
  for (int64_t j = 0; j < Dv; ++j) {
    delta[j] = (in.v[j] - static_cast<float>(acc[j])) * in.beta;
    acc[j] = 0.0;
  }
  for (int64_t i = 0; i < Dk; ++i) {
    float* row = S + i * Dv;
    const float ki = in.k[i];
    const double qi = in.q[i];
    for (int64_t j = 0; j < Dv; ++j) {
      row[j] += ki * delta[j];
      acc[j] += static_cast<double>(row[j]) * qi;
    }
  }
  for (int64_t j = 0; j < Dv; ++j) o[j] = static_cast<float>(acc[j]);
}

}  // namespace

void GatedDeltaNet(const LayerContext& c, const GdnWeights& w, const Rows& xs, GdnState& state,
                   std::vector<GdnState>* after_each, Rows& ys) {
  const Geometry& g = c.geo;
  const int64_t n = xs.n, C = g.conv_channels(), K = g.conv_kernel;
  const int64_t Hk = g.k_heads, Hv = g.v_heads, Dk = g.k_dim, Dv = g.v_dim, kd = Hk * Dk, vd = Hv * Dv;
  Rows qkv(n, C), z(n, vd), b(n, Hv), a(n, Hv), core(n, vd);
  const auto in = xs.cptrs();
  c.mm.RunGroup({{&w.qkv, in, qkv.ptrs()}, {&w.z, in, z.ptrs()}, {&w.b, in, b.ptrs()}, {&w.a, in, a.ptrs()}});

  if (after_each) {
    after_each->resize(static_cast<size_t>(std::max<int64_t>(n - 1, 0)));
    for (GdnState& snap : *after_each) {  // no-ops when the vector is reused
      snap.conv.resize(state.conv.size());
      snap.ssm.resize(state.ssm.size());
    }
  }
  std::vector<float> y(static_cast<size_t>(C));
  const float q_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dk)));
  for (int64_t t = 0; t < n; ++t) {
    const float* x = qkv.at(t);
    // Causal depthwise conv over [state (K-1 oldest first), x], then silu; the state keeps raw inputs.
    for (int64_t ch = 0; ch < C; ++ch) {
      double acc = 0;
      for (int64_t j = 0; j + 1 < K; ++j)
        acc += static_cast<double>(w.conv[ch * K + j]) * state.conv[j * C + ch];
      acc += static_cast<double>(w.conv[ch * K + K - 1]) * x[ch];
      y[ch] = Silu(static_cast<float>(acc));
    }
    if (K > 1) {
      std::copy(state.conv.begin() + C, state.conv.end(), state.conv.begin());
      std::copy(x, x + C, state.conv.end() - C);
    }
    GdnState* snap = after_each && t + 1 < n ? &(*after_each)[static_cast<size_t>(t)] : nullptr;
    if (snap) std::copy(state.conv.begin(), state.conv.end(), snap->conv.begin());
    float* q = y.data();
    float* k = y.data() + kd;
    const float* v = y.data() + 2 * kd;
    for (int64_t h = 0; h < Hk; ++h) {  // l2norm with eps inside the sum (transformers), q scaled by Dk^-1/2
      float* qh = q + h * Dk;
      float* kh = k + h * Dk;
      const float iq = static_cast<float>(1.0 / std::sqrt(Dot(qh, qh, Dk) + 1e-6));
      const float ik = static_cast<float>(1.0 / std::sqrt(Dot(kh, kh, Dk) + 1e-6));
      for (int64_t i = 0; i < Dk; ++i) {
        qh[i] = (qh[i] * iq) * q_scale;
        kh[i] = kh[i] * ik;
      }
    }
    // Heads are independent: spread over the pool (each head's arithmetic is the same whatever the split).
    ParallelFor(c.mm.pool(), static_cast<size_t>(Hv), [&](size_t hi) {
      const int64_t h = static_cast<int64_t>(hi);
      const int64_t kh = h / (Hv / Hk);  // consecutive value heads share a key head
      GdnHeadInput head{k + kh * Dk, q + kh * Dk, v + h * Dv, Sigmoid(b.at(t)[h]),
                        std::exp(-std::exp(w.a_log[h]) * Softplus(a.at(t)[h] + w.dt_bias[h]))};
      float* o = core.at(t) + h * Dv;
      float* s = state.ssm.data() + h * Dk * Dv;
      GdnHeadStep(head, Dk, Dv, s, o);
      if (snap) std::copy(s, s + Dk * Dv, snap->ssm.data() + h * Dk * Dv);  // while it is in this core's cache
      // Gated RMSNorm: plain weight, then silu(z) of the same head.
      const float inv = static_cast<float>(1.0 / std::sqrt(Dot(o, o, Dv) / static_cast<double>(Dv) + g.eps));
      const float* zh = z.at(t) + h * Dv;
      for (int64_t j = 0; j < Dv; ++j) o[j] = (w.norm[j] * (o[j] * inv)) * Silu(zh[j]);
    });
  }
  c.mm.Run(w.out, core.cptrs(), ys.ptrs());
}

void GatedAttention(const LayerContext& c, const AttentionWeights& w, const Rows& xs, int64_t start,
                    KvCache& cache, Rows& ys) {
  const Geometry& g = c.geo;
  const int64_t n = xs.n, nh = g.heads, nkv = g.kv_heads, d = g.head_dim;
  Rows qg(n, 2 * nh * d), kk(n, nkv * d), vv(n, nkv * d), out(n, nh * d);
  const auto in = xs.cptrs();
  c.mm.RunGroup({{&w.q, in, qg.ptrs()}, {&w.k, in, kk.ptrs()}, {&w.v, in, vv.ptrs()}});
  cache.width = nkv * d;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  std::vector<float> q(static_cast<size_t>(d)), scores;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t pos = start + t;
    float* kt = kk.at(t);
    for (int64_t j = 0; j < nkv; ++j) {
      RmsNorm(kt + j * d, w.k_norm.data(), d, g.eps, kt + j * d);
      ApplyRope(kt + j * d, g.rope_dims, g.rope_theta, pos);
    }
    cache.k.insert(cache.k.end(), kt, kt + nkv * d);
    cache.v.insert(cache.v.end(), vv.at(t), vv.at(t) + nkv * d);
    const int64_t len = cache.size();
    scores.resize(static_cast<size_t>(len));
    for (int64_t h = 0; h < nh; ++h) {
      const float* qh = qg.at(t) + h * 2 * d;  // per head: d query rows then d gate rows (pitfall 10)
      const float* gate = qh + d;
      RmsNorm(qh, w.q_norm.data(), d, g.eps, q.data());
      ApplyRope(q.data(), g.rope_dims, g.rope_theta, pos);
      const int64_t grp = h / (nh / nkv);
      for (int64_t s = 0; s < len; ++s) {
        scores[s] = static_cast<float>(Dot(q.data(), cache.k.data() + s * cache.width + grp * d, d)) * scale;
      }
      Softmax(scores.data(), len);
      float* o = out.at(t) + h * d;
      for (int64_t i = 0; i < d; ++i) {
        double acc = 0;
        for (int64_t s = 0; s < len; ++s)
          acc += static_cast<double>(scores[s]) * cache.v[s * cache.width + grp * d + i];
        o[i] = static_cast<float>(acc) * Sigmoid(gate[i]);
      }
    }
  }
  c.mm.Run(w.o, out.cptrs(), ys.ptrs());
}

namespace {

void SiluTimes(Rows& gate, const Rows& up) {
  for (size_t i = 0; i < gate.data.size(); ++i) gate.data[i] = Silu(gate.data[i]) * up.data[i];
}

void Mlp(const LayerContext& c, const MlpWeights& w, const Rows& xs, Rows& ys) {
  const int64_t width = w.gate.rows();
  Rows gate(xs.n, width), up(xs.n, width);
  const auto in = xs.cptrs();
  c.mm.RunGroup({{&w.gate, in, gate.ptrs()}, {&w.up, in, up.ptrs()}});
  SiluTimes(gate, up);
  c.mm.Run(w.down, gate.cptrs(), ys.ptrs());
}

// Three parallel regions per layer whatever the batch: router, shared gate and the shared expert's
// gate/up; every chosen expert's gate/up (an expert chosen by several tokens of a verify pass reads its
// weights once for all of them); every down projection. Each token's sum over its top-k is then taken in
// the order of its ranking, as one token alone would.
void Moe(const LayerContext& c, const MoeWeights& w, const Rows& xs, Rows& ys) {
  const Geometry& g = c.geo;
  const int64_t H = g.hidden, E = g.experts, k = g.experts_per_tok, n = xs.n;
  const int64_t shared_width = w.shared.gate.rows();
  Rows router(n, E), shared_gate(n, 1), sh_gate(n, shared_width), sh_up(n, shared_width), shared(n, H);
  const auto in = xs.cptrs();
  c.mm.RunGroup({{&w.router, in, router.ptrs()},
                 {&w.shared_gate, in, shared_gate.ptrs()},
                 {&w.shared.gate, in, sh_gate.ptrs()},
                 {&w.shared.up, in, sh_up.ptrs()}});
  // Routing: per token its top-k experts (ranked) and renormalized weights (Qwen3.5-MoE always renormalizes).
  std::vector<int64_t> order(static_cast<size_t>(E)), chosen(static_cast<size_t>(n * k));
  std::vector<float> weight(static_cast<size_t>(n * k));
  for (int64_t t = 0; t < n; ++t) {
    float* p = router.at(t);
    Softmax(p, E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    float total = 0;
    for (int64_t i = 0; i < k; ++i) total += p[order[i]];
    for (int64_t i = 0; i < k; ++i) {
      chosen[t * k + i] = order[i];
      weight[t * k + i] = p[order[i]] / total;
    }
  }
  // Slot t * k + i: token t's i-th expert. Grouped by expert, in order of first use.
  std::vector<int64_t> experts;
  std::vector<std::vector<int64_t>> slots_of(static_cast<size_t>(E));
  for (int64_t s = 0; s < n * k; ++s) {
    auto& slots = slots_of[static_cast<size_t>(chosen[s])];
    if (slots.empty()) experts.push_back(chosen[s]);
    slots.push_back(s);
  }
  const int64_t width = experts.empty() ? 0 : w.experts[static_cast<size_t>(experts[0])].gate.rows();
  Rows gate(n * k, width), up(n * k, width), out(n * k, H);
  std::vector<Product> products;
  for (int64_t e : experts) {
    const MlpWeights& ew = w.experts[static_cast<size_t>(e)];
    Product pg{&ew.gate, {}, {}}, pu{&ew.up, {}, {}};
    for (int64_t s : slots_of[static_cast<size_t>(e)]) {
      pg.xs.push_back(xs.at(s / k));
      pg.ys.push_back(gate.at(s));
      pu.xs.push_back(xs.at(s / k));
      pu.ys.push_back(up.at(s));
    }
    products.push_back(std::move(pg));
    products.push_back(std::move(pu));
  }
  c.mm.RunGroup(products);
  SiluTimes(gate, up);
  SiluTimes(sh_gate, sh_up);
  products.clear();
  for (int64_t e : experts) {
    Product pd{&w.experts[static_cast<size_t>(e)].down, {}, {}};
    for (int64_t s : slots_of[static_cast<size_t>(e)]) {
      pd.xs.push_back(gate.at(s));
      pd.ys.push_back(out.at(s));
    }
    products.push_back(std::move(pd));
  }
  products.push_back({&w.shared.down, sh_gate.cptrs(), shared.ptrs()});
  c.mm.RunGroup(products);
  for (int64_t t = 0; t < n; ++t) {
    float* y = ys.at(t);
    std::fill(y, y + H, 0.0f);
    for (int64_t i = 0; i < k; ++i) {
      const float wi = weight[t * k + i];
      const float* o = out.at(t * k + i);
      for (int64_t j = 0; j < H; ++j) y[j] += wi * o[j];
    }
    const float sg = Sigmoid(shared_gate.at(t)[0]);
    for (int64_t j = 0; j < H; ++j) y[j] += sg * shared.at(t)[j];
  }
}

}  // namespace

void FeedForward(const LayerContext& c, const LayerWeights& w, const Rows& xs, Rows& ys) {
  if (w.moe) {
    Moe(c, w.moe_w, xs, ys);
  } else {
    Mlp(c, w.mlp, xs, ys);
  }
}

}  // namespace forge::verify::model
