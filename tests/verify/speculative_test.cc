// MTP speculative greedy decoding on the reference decoder: batch invariance (a position's arithmetic is the
// same alone or inside a verify pass), exact rollback, token identity with plain greedy at depths 1..4 on
// every fixture with a head, and the accept path checked against transformers: on the trained fixture every
// depth-1 draft must equal the argmax of the independent PyTorch MTP head at the same slot (so the MTP cache
// is exact), and a draft is accepted exactly when that argmax is transformers' greedy token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "tests/st/test_files.h"
#include "tests/verify/reference_helpers.h"
#include "verify/spec/identity.h"

namespace forge::testing {
namespace {

using verify::model::Decoder;
using verify::model::ForwardOutput;
using verify::model::LogitsFor;
using verify::model::MtpHead;
using verify::model::Rows;
using verify::spec::DecodeOptions;

bool SameBits(const Rows& a, int64_t ra, const Rows& b, int64_t rb) {
  return a.width == b.width &&
         std::memcmp(a.at(ra), b.at(rb), static_cast<size_t>(a.width) * sizeof(float)) == 0;
}

const char* const kMtpFixtures[] = {"dense-vlm-hf",     "dense-text-hf",        "moe-vlm-hf",
                                    "moe36-vlm-hf",     "moe-vlm-hf-perexpert", "dense-vlm-mlx",
                                    "moe-vlm-mlx",      "moe36-vlm-mlx",        "moe-vlm-mlx-mixed",
                                    "dense-vlm-mlx-q4", "trained-vlm-hf"};

TEST(BatchInvariance, VerifyPassEqualsOneTokenAtATime) {
  for (const char* name : {"trained-vlm-hf", "moe-vlm-hf", "dense-vlm-mlx-q4"}) {
    SCOPED_TRACE(name);
    LoadedModel m = LoadModel(FixturePath(name));
    ASSERT_TRUE(m.weights);
    ThreadPool pool(2);  // threads must not change results either
    Decoder alone(*m.weights, nullptr), batched(*m.weights, &pool);
    const std::vector<int64_t> tokens = {5, 17, 42, 99, 7, 250, 3, 64};
    auto sa = alone.NewState(), sb = batched.NewState();
    ForwardOutput one, all;
    std::vector<Rows> singles;
    for (int64_t t : tokens) {
      alone.Forward({t}, sa, LogitsFor::kAll, one);
      singles.push_back(one.logits);
    }
    // Same tokens as a 3-token prefill then a 5-token "verify pass".
    ForwardOutput pre;
    batched.Forward({tokens.begin(), tokens.begin() + 3}, sb, LogitsFor::kAll, pre);
    batched.Forward({tokens.begin() + 3, tokens.end()}, sb, LogitsFor::kAll, all);
    for (int64_t i = 0; i < 3; ++i) EXPECT_TRUE(SameBits(singles[i], 0, pre.logits, i)) << "position " << i;
    for (int64_t i = 3; i < 8; ++i)
      EXPECT_TRUE(SameBits(singles[i], 0, all.logits, i - 3)) << "position " << i;
    EXPECT_EQ(sa.gdn, sb.gdn);
    for (size_t l = 0; l < sa.kv.size(); ++l) EXPECT_EQ(sa.kv[l].k, sb.kv[l].k);

    // MTP head: slots one at a time vs all at once.
    MtpHead ma(*m.weights, nullptr), mb(*m.weights, &pool);
    auto qa = ma.NewState(), qb = mb.NewState();
    verify::model::MtpOutput oa, ob;
    std::vector<Rows> slot_logits;
    for (int64_t i = 0; i < 5; ++i) {
      Rows h(1, all.post_norm.width);
      std::memcpy(h.at(0), all.post_norm.at(i), static_cast<size_t>(h.width) * sizeof(float));
      ma.Forward(h, {tokens[static_cast<size_t>(i + 4) % tokens.size()]}, i, qa, oa);
      slot_logits.push_back(oa.logits);
    }
    Rows h5(5, all.post_norm.width);
    std::memcpy(h5.data.data(), all.post_norm.data.data(), h5.data.size() * sizeof(float));
    std::vector<int64_t> next;
    for (int64_t i = 0; i < 5; ++i) next.push_back(tokens[static_cast<size_t>(i + 4) % tokens.size()]);
    mb.Forward(h5, next, 0, qb, ob);
    for (int64_t i = 0; i < 5; ++i)
      EXPECT_TRUE(SameBits(slot_logits[i], 0, ob.logits, i)) << "MTP slot " << i;
  }
}

TEST(Rollback, RestoreEqualsNeverHavingSeenTheRejectedTokens) {
  LoadedModel m = LoadModel(FixturePath("moe-vlm-hf"));
  ASSERT_TRUE(m.weights);
  Decoder dec(*m.weights, nullptr);
  ForwardOutput out;
  auto a = dec.NewState();
  dec.Forward({1, 2, 3}, a, LogitsFor::kNone, out);
  verify::model::GdnSnapshots snaps;
  dec.Forward({4, 5, 6, 7}, a, LogitsFor::kNone, out, &snaps);
  dec.Restore(a, snaps, 3, 1);  // keep 4, 5; drop 6, 7
  auto b = dec.NewState();
  dec.Forward({1, 2, 3, 4, 5}, b, LogitsFor::kNone, out);
  EXPECT_EQ(a.position, 5);
  EXPECT_EQ(a.gdn, b.gdn);
  for (size_t l = 0; l < a.kv.size(); ++l) {
    EXPECT_EQ(a.kv[l].k, b.kv[l].k);
    EXPECT_EQ(a.kv[l].v, b.kv[l].v);
  }
  ForwardOutput x, y;
  dec.Forward({9}, a, LogitsFor::kLast, x);
  dec.Forward({9}, b, LogitsFor::kLast, y);
  EXPECT_TRUE(SameBits(x.logits, 0, y.logits, 0));
}

// One snapshot vector kept across passes of different lengths (as the speculative loop keeps it), each
// pass rolled back at a different position, on a pool (the snapshot is copied per head by the threads that
// update the heads): the state equals decoding only the kept tokens, every time.
TEST(Rollback, SnapshotsReusedAcrossPassesRestoreEveryTime) {
  LoadedModel m = LoadModel(FixturePath("moe-vlm-hf"));
  ASSERT_TRUE(m.weights);
  ThreadPool pool(3);
  Decoder dec(*m.weights, &pool);
  ForwardOutput out;
  auto a = dec.NewState();
  std::vector<int64_t> kept = {1, 2, 3};
  dec.Forward(kept, a, LogitsFor::kNone, out);
  verify::model::GdnSnapshots snaps;
  const std::vector<std::vector<int64_t>> passes = {{4, 5, 6}, {7, 8}, {9, 10, 11, 12}, {13, 14, 15}};
  const std::vector<int64_t> keep = {2, 1, 1, 3};  // positions of each pass kept (the last pass: all)
  for (size_t i = 0; i < passes.size(); ++i) {
    const int64_t start = a.position, n = static_cast<int64_t>(passes[i].size());
    dec.Forward(passes[i], a, LogitsFor::kNone, out, &snaps);
    if (keep[i] < n) dec.Restore(a, snaps, start, keep[i] - 1);
    kept.insert(kept.end(), passes[i].begin(), passes[i].begin() + keep[i]);
    auto b = dec.NewState();
    dec.Forward(kept, b, LogitsFor::kNone, out);
    ASSERT_EQ(a.position, b.position) << "pass " << i;
    EXPECT_EQ(a.gdn, b.gdn) << "pass " << i;
    for (size_t l = 0; l < a.kv.size(); ++l) EXPECT_EQ(a.kv[l].k, b.kv[l].k) << "pass " << i << " layer " << l;
  }
}

class Identity : public ::testing::TestWithParam<const char*> {};

TEST_P(Identity, PlainAndSpeculativeAgreeAtEveryDepth) {
  const char* name = GetParam();
  LoadedModel m = LoadModel(FixturePath(name));
  ASSERT_TRUE(m.weights);
  ASSERT_TRUE(m.weights->has_mtp);
  Decoder dec(*m.weights, nullptr);
  MtpHead mtp(*m.weights, nullptr);
  const std::vector<std::vector<int64_t>> prompts = {{11}, {40, 41, 42, 43, 44, 45, 46}, {3, 200, 3, 200, 3}};
  for (int depth = 1; depth <= 4; ++depth) {
    for (bool post : {true, false}) {
      DecodeOptions o;
      o.max_tokens = 24;
      o.depth = depth;
      o.mtp_post_norm = post;
      auto r = verify::spec::RunIdentity(dec, mtp, prompts, o);
      EXPECT_TRUE(r.identical()) << "depth " << depth << (post ? " post" : " pre");
      for (const auto& p : r.prompts) {
        EXPECT_EQ(p.vanilla.tokens.size(), 24u);
        EXPECT_LE(p.mtp.accepted, p.mtp.drafted);
        EXPECT_EQ(p.mtp.drafted, depth * static_cast<int64_t>(p.mtp.rounds.size()));
        for (int j = 1; j < depth; ++j) EXPECT_LE(p.mtp.accepted_at[j], p.mtp.accepted_at[j - 1]);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Identity, ::testing::ValuesIn(kMtpFixtures), [](const auto& param_info) {
  std::string n = param_info.param;
  for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return n;
});

TEST(AcceptPath, DraftsAreTransformersMtpArgmaxAtTheSameSlot) {
  LoadedModel m = LoadModel(FixturePath("trained-vlm-hf"));
  ASSERT_TRUE(m.weights);
  Decoder dec(*m.weights, nullptr);
  MtpHead mtp(*m.weights, nullptr);
  int64_t drafted = 0, accepted = 0;
  for (const ReferenceCase& ref : LoadReference("trained-vlm-hf")) {
    DecodeOptions o;
    o.max_tokens = static_cast<int64_t>(ref.greedy.size());
    auto r = verify::spec::SpeculativeGreedy(dec, mtp, ref.prompt, o);
    ASSERT_EQ(r.tokens, ref.greedy);
    const std::vector<int64_t> seq = ref.sequence();
    for (const auto& round : r.rounds) {
      // d_0 for position p+1 comes from slot p-1 = (h_{p-1}, x_p) over the true sequence.
      const size_t slot = static_cast<size_t>(round.position - 1);
      ASSERT_LT(slot, ref.mtp_post_argmax.size());
      EXPECT_EQ(round.drafts[0], ref.mtp_post_argmax[slot]) << "round at " << round.position;
      EXPECT_EQ(round.accepted == 1, ref.mtp_post_argmax[slot] == seq[slot + 2]);
      EXPECT_EQ(round.targets[0], seq[static_cast<size_t>(round.position) + 1]);
    }
    drafted += r.drafted;
    accepted += r.accepted;
  }
  const double acceptance = static_cast<double>(accepted) / static_cast<double>(drafted);
  std::printf("[ measured ] trained-vlm-hf depth 1 acceptance on the reference prompts: %.3f (%ld/%ld)\n",
              acceptance, static_cast<long>(accepted), static_cast<long>(drafted));
  EXPECT_GT(acceptance, 0.6);
}

TEST(Acceptance, TrainedHeadAcceptsAtEveryDepth) {
  LoadedModel m = LoadModel(FixturePath("trained-vlm-hf"));
  ASSERT_TRUE(m.weights);
  Decoder dec(*m.weights, nullptr);
  MtpHead mtp(*m.weights, nullptr);
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& ref : LoadReference("trained-vlm-hf")) prompts.push_back(ref.prompt);
  for (int depth = 1; depth <= 3; ++depth) {
    DecodeOptions o;
    o.max_tokens = 40;
    o.depth = depth;
    auto r = verify::spec::RunIdentity(dec, mtp, prompts, o);
    ASSERT_TRUE(r.identical());
    nlohmann::json j = verify::spec::IdentityJson(r, nullptr);
    std::printf("[ measured ] trained-vlm-hf depth %d: acceptance %.3f, mean accepted length %.2f\n", depth,
                j["acceptance"].get<double>(), j["mean_accepted_length"].get<double>());
    EXPECT_GT(j["mean_accepted_length"].get<double>(), 1.5);  // far above a random head's ~1.0
    EXPECT_EQ(j["per_position"].size(), static_cast<size_t>(depth));
  }
}

TEST(Stopping, MaxTokensAndEosTruncateBothPathsAlike) {
  LoadedModel m = LoadModel(FixturePath("trained-vlm-hf"));
  ASSERT_TRUE(m.weights);
  Decoder dec(*m.weights, nullptr);
  MtpHead mtp(*m.weights, nullptr);
  const auto ref = LoadReference("trained-vlm-hf")[0];
  DecodeOptions o;
  o.max_tokens = 7;
  o.depth = 3;
  auto r = verify::spec::RunIdentity(dec, mtp, {ref.prompt}, o);
  ASSERT_TRUE(r.identical());
  EXPECT_EQ(r.prompts[0].mtp.tokens, std::vector<int64_t>(ref.greedy.begin(), ref.greedy.begin() + 7));
  // Make the 5th greedy token the "EOS": both stop right after it.
  o.max_tokens = 40;
  o.eos_token = ref.greedy[4];
  const size_t first =
      static_cast<size_t>(std::find(ref.greedy.begin(), ref.greedy.end(), o.eos_token) - ref.greedy.begin());
  r = verify::spec::RunIdentity(dec, mtp, {ref.prompt}, o);
  ASSERT_TRUE(r.identical());
  EXPECT_EQ(r.prompts[0].vanilla.tokens.size(), first + 1);
}

TEST(Report, DivergenceIsLocatedAndNamed) {
  verify::spec::IdentityOutcome r;
  verify::spec::PromptOutcome p;
  p.prompt = {1, 2};
  p.vanilla.tokens = {5, 6, 7};
  p.mtp.tokens = {5, 6, 8};
  p.identical = false;
  p.divergence = 2;
  p.mtp.drafted = 4;
  p.mtp.accepted = 1;
  p.mtp.rounds.resize(2);
  p.mtp.accepted_at = {1};
  p.mtp.reached_at = {2};
  r.prompts.push_back(p);
  const nlohmann::json j = verify::spec::IdentityJson(r, nullptr);
  EXPECT_FALSE(j["identical"].get<bool>());
  EXPECT_EQ(j["prompts"][0]["first_divergence"]["position"], 2);
  EXPECT_EQ(j["prompts"][0]["first_divergence"]["vanilla"], 7);
  EXPECT_EQ(j["prompts"][0]["first_divergence"]["mtp"], 8);
  EXPECT_DOUBLE_EQ(j["acceptance"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["mean_accepted_length"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["per_position"][0]["rate"].get<double>(), 0.5);
  EXPECT_NE(verify::spec::IdentityText(r, nullptr).find("DIVERGED at token 2 (plain 7, mtp 8)"),
            std::string::npos);
}

}  // namespace
}  // namespace forge::testing
