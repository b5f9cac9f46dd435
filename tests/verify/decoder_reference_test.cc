// The reference decoder against transformers (fixtures/references, made on the GPU machine by
// scripts/make_fixtures.py and scripts/train_tiny_mtp.py: full recompute per step, f32): plain greedy tokens
// equal, every step's logits within 1e-3, and the MTP head's draft logits (a head built from transformers'
// own layer classes) within 1e-3 for both hidden choices. Checkpoints in other layouts of the same weights
// (per-expert, Qwen3.6 fused MTP, MLX with +1 norms stored in bf16) are held to the same references.
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/st/test_files.h"
#include "tests/verify/reference_helpers.h"
#include "verify/spec/speculative.h"

namespace forge::testing {
namespace {

using verify::model::Decoder;
using verify::model::ForwardOutput;
using verify::model::LogitsFor;
using verify::model::MtpHead;
using verify::model::MtpOutput;

struct Case {
  std::string fixture, reference;
  float tolerance;  // max |logit - reference|
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.fixture; }

class DecoderReference : public ::testing::TestWithParam<Case> {};

TEST_P(DecoderReference, PlainGreedyMatchesTransformers) {
  const Case& c = GetParam();
  LoadedModel m = LoadModel(FixturePath(c.fixture));
  ASSERT_TRUE(m.weights);
  Decoder dec(*m.weights, nullptr);
  float worst = 0;
  for (const ReferenceCase& ref : LoadReference(c.reference)) {
    verify::spec::DecodeOptions o;
    o.max_tokens = static_cast<int64_t>(ref.greedy.size());
    verify::spec::PlainResult r = verify::spec::PlainGreedy(dec, ref.prompt, o, /*keep_logits=*/true);
    EXPECT_EQ(r.tokens, ref.greedy);
    // Logits are compared along the reference's own sequence (teacher forcing), so a flipped near-tie in a
    // looser layout cannot cascade into unrelated positions.
    verify::model::DecoderState st = dec.NewState();
    ForwardOutput out;
    std::vector<int64_t> seq = ref.sequence();
    seq.pop_back();
    dec.Forward(seq, st, LogitsFor::kAll, out);
    for (size_t s = 0; s < ref.step_logits.size(); ++s) {
      const float d =
          MaxAbsDiff(out.logits.at(static_cast<int64_t>(ref.prompt.size() - 1 + s)), ref.step_logits[s]);
      worst = std::max(worst, d);
      EXPECT_LE(d, c.tolerance) << "step " << s;
      EXPECT_LE(MaxAbsDiff(r.step_logits[s].data(), ref.step_logits[s]), c.tolerance);
    }
  }
  std::printf("[ measured ] %s: max |logit - transformers| = %.2e\n", c.fixture.c_str(), worst);
}

TEST_P(DecoderReference, MtpDraftLogitsMatchIndependentHead) {
  const Case& c = GetParam();
  LoadedModel m = LoadModel(FixturePath(c.fixture));
  ASSERT_TRUE(m.weights);
  if (!m.weights->has_mtp) GTEST_SKIP() << "no MTP head";
  Decoder dec(*m.weights, nullptr);
  MtpHead mtp(*m.weights, nullptr);
  float worst = 0;
  size_t argmax_equal = 0, slots = 0;
  for (const ReferenceCase& ref : LoadReference(c.reference)) {
    ASSERT_FALSE(ref.mtp_post_logits.empty());
    const std::vector<int64_t> seq = ref.sequence();
    verify::model::DecoderState st = dec.NewState();
    ForwardOutput out;
    dec.Forward(seq, st, LogitsFor::kNone, out);
    for (bool post : {true, false}) {
      const auto& hidden = post ? out.post_norm : out.pre_norm;
      const auto& want = post ? ref.mtp_post_logits : ref.mtp_pre_logits;
      const auto& want_argmax = post ? ref.mtp_post_argmax : ref.mtp_pre_argmax;
      // Slots i = (h_i, x_{i+1}), i = 0..T-2, at MTP positions 0..T-2.
      verify::model::Rows h(hidden.n - 1, hidden.width);
      std::copy(hidden.data.begin(), hidden.data.end() - hidden.width, h.data.begin());
      verify::model::MtpState ms = mtp.NewState();
      MtpOutput mo;
      mtp.Forward(h, std::vector<int64_t>(seq.begin() + 1, seq.end()), 0, ms, mo);
      ASSERT_EQ(static_cast<size_t>(mo.logits.n), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        const float d = MaxAbsDiff(mo.logits.at(static_cast<int64_t>(i)), want[i]);
        worst = std::max(worst, d);
        EXPECT_LE(d, c.tolerance) << (post ? "post" : "pre") << "-norm slot " << i;
        ++slots;
        argmax_equal +=
            verify::model::Argmax(mo.logits.at(static_cast<int64_t>(i)), mo.logits.width) == want_argmax[i];
      }
    }
  }
  std::printf("[ measured ] %s: MTP max |logit - reference head| = %.2e, argmax equal %zu/%zu\n",
              c.fixture.c_str(), worst, argmax_equal, slots);
  EXPECT_EQ(argmax_equal, slots);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, DecoderReference,
    ::testing::Values(Case{"dense-vlm-hf", "dense-vlm-hf", 1e-3f},
                      Case{"dense-text-hf", "dense-text-hf", 1e-3f}, Case{"moe-vlm-hf", "moe-vlm-hf", 1e-3f},
                      Case{"moe36-vlm-hf", "moe-vlm-hf", 1e-3f},
                      Case{"moe-vlm-hf-perexpert", "moe-vlm-hf", 1e-3f},
                      Case{"trained-vlm-hf", "trained-vlm-hf", 1e-3f},
                      Case{"trained-vlm-finetune-nomtp", "trained-vlm-finetune-nomtp", 1e-3f}),
    [](const auto& param_info) {
      std::string n = param_info.param.fixture;
      for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return n;
    });

}  // namespace
}  // namespace forge::testing
