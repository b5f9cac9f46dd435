#include "verify/model/decoder.h"

#include <cstdio>
#include <cstdlib>

namespace forge::verify::model {
namespace {

void AddInPlace(Rows& x, const Rows& y) {
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] += y.data[i];
}

void NormRows(const Rows& x, const std::vector<float>& gain, double eps, Rows& y) {
  for (int64_t t = 0; t < x.n; ++t) RmsNorm(x.at(t), gain.data(), x.width, eps, y.at(t));
}

// One decoder layer (spec §4.2): h = x + Mixer(Norm_in(x)); out = h + FFN(Norm_post(h)).
void RunLayer(const LayerContext& c, const LayerWeights& L, Rows& x, int64_t start, GdnState* gdn,
              KvCache* kv, std::vector<GdnState>* after_each) {
  Rows normed(x.n, x.width), mixed(x.n, x.width);
  NormRows(x, L.input_norm, c.geo.eps, normed);
  if (L.full_attention) {
    GatedAttention(c, L.attn, normed, start, *kv, mixed);
  } else {
    GatedDeltaNet(c, L.gdn, normed, *gdn, after_each, mixed);
  }
  AddInPlace(x, mixed);
  NormRows(x, L.post_norm, c.geo.eps, normed);
  FeedForward(c, L, normed, mixed);
  AddInPlace(x, mixed);
}

}  // namespace

DecoderState Decoder::NewState() const {
  DecoderState st;
  st.gdn.resize(w_.layers.size());
  st.kv.resize(w_.layers.size());
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    if (!w_.layers[i].full_attention) st.gdn[i] = EmptyGdnState(w_.geo);
  }
  return st;
}

void Decoder::Forward(const std::vector<int64_t>& tokens, DecoderState& st, LogitsFor which,
                      ForwardOutput& out, GdnSnapshots* snapshots) const {
  const Geometry& g = w_.geo;
  const int64_t n = static_cast<int64_t>(tokens.size());
  Rows x(n, g.hidden);
  for (int64_t t = 0; t < n; ++t) Embed(tokens[static_cast<size_t>(t)], x.at(t));
  const LayerContext c{g, mm_};
  if (snapshots) snapshots->resize(w_.layers.size());
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    std::vector<GdnState>* after_each = nullptr;
    if (snapshots && !w_.layers[i].full_attention) after_each = &(*snapshots)[i];
    RunLayer(c, w_.layers[i], x, st.position, &st.gdn[i], &st.kv[i], after_each);
  }
  out.pre_norm = x;
  out.post_norm = Rows(n, g.hidden);
  NormRows(x, w_.final_norm, g.eps, out.post_norm);
  if (which == LogitsFor::kAll) {
    out.logits = Rows(n, g.vocab);
    LmHead(out.post_norm.cptrs(), out.logits.ptrs());
  } else if (which == LogitsFor::kLast) {
    out.logits = Rows(1, g.vocab);
    LmHead({out.post_norm.at(n - 1)}, {out.logits.at(0)});
  } else {
    out.logits = Rows();
  }
  st.position += n;
}

void Decoder::Restore(DecoderState& st, GdnSnapshots& snapshots, int64_t start, int64_t t) const {
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    const size_t kept = i < snapshots.size() ? snapshots[i].size() : 0;  // positions of the pass - 1
    if (t < 0 || (!w_.layers[i].full_attention && static_cast<size_t>(t) >= kept)) {
      std::fprintf(stderr, "forge: internal error: Restore(%lld) of a pass with %zu snapshots\n",
                   static_cast<long long>(t), kept);
      std::abort();
    }
  }
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    if (w_.layers[i].full_attention) {
      st.kv[i].Truncate(start + t + 1);
    } else {
      GdnState& snap = snapshots[i][static_cast<size_t>(t)];
      st.gdn[i].conv.swap(snap.conv);
      st.gdn[i].ssm.swap(snap.ssm);
    }
  }
  st.position = start + t + 1;
}

MtpState MtpHead::NewState() const {
  MtpState st;
  st.kv.resize(w_.mtp.layers.size());
  return st;
}

void MtpHead::Forward(const Rows& hiddens, const std::vector<int64_t>& tokens, int64_t start, MtpState& st,
                      MtpOutput& out) const {
  const Geometry& g = w_.geo;
  const int64_t n = hiddens.n, H = g.hidden;
  const MtpWeights& M = w_.mtp;
  // fc input: [pre_fc_norm_embedding(embed(x_{i+1})), pre_fc_norm_hidden(h_i)] (embedding first, pitfall 1).
  Rows cat(n, 2 * H), emb(n, H);
  for (int64_t t = 0; t < n; ++t) {
    decoder_.Embed(tokens[static_cast<size_t>(t)], emb.at(t));
    RmsNorm(emb.at(t), M.pre_fc_norm_embedding.data(), H, g.eps, cat.at(t));
    RmsNorm(hiddens.at(t), M.pre_fc_norm_hidden.data(), H, g.eps, cat.at(t) + H);
  }
  Rows x(n, H);
  mm_.Run(M.fc, cat.cptrs(), x.ptrs());
  const LayerContext c{g, mm_};
  for (size_t i = 0; i < M.layers.size(); ++i) {
    st.kv[i].Truncate(start);
    RunLayer(c, M.layers[i], x, start, nullptr, &st.kv[i], nullptr);
  }
  out.hidden = Rows(n, H);
  NormRows(x, M.norm, g.eps, out.hidden);
  out.logits = Rows(n, g.vocab);
  decoder_.LmHead(out.hidden.cptrs(), out.logits.ptrs());
}

}  // namespace forge::verify::model
