// forge's byte-level BPE against Hugging Face `tokenizers` itself: the ids and decoded strings in
// fixtures/references/trained-vlm-hf.tokenizer-cases.json were produced by the tokenizer that trained the
// fixture (contractions, digits, CJK, emoji, a decomposed accent that NFC composes, CR/LF runs, control
// bytes, special tokens inside text).
#include <gtest/gtest.h>

#include "tests/st/test_files.h"
#include "verify/tokenizer/bpe_tokenizer.h"

namespace forge::testing {
namespace {

TEST(BpeTokenizer, EncodesAndDecodesLikeHuggingFaceTokenizers) {
  auto tok = verify::BpeTokenizer::Load(FixturePath("trained-vlm-hf/tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const nlohmann::json cases = ReadJson(FixturePath("references/trained-vlm-hf.tokenizer-cases.json"));
  ASSERT_GE(cases["cases"].size(), 8u);
  for (const auto& c : cases["cases"]) {
    const std::string text = c["text"].get<std::string>();
    auto ids = (*tok)->Encode(text);
    ASSERT_TRUE(ids.ok()) << text;
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int64_t>>()) << text;
    EXPECT_EQ((*tok)->Decode(c["ids"].get<std::vector<int64_t>>()), c["decoded"].get<std::string>()) << text;
  }
}

TEST(BpeTokenizer, FixturePromptsRoundTrip) {
  // The 320-token tokenizer of the random fixtures encodes make_fixtures.py's prompts to the recorded ids.
  auto tok = verify::BpeTokenizer::Load(FixturePath("dense-vlm-hf/tokenizer.json"));
  ASSERT_TRUE(tok.ok());
  const nlohmann::json ref = ReadJson(FixturePath("references/dense-vlm-hf.tokens.json"));
  auto a = (*tok)->Encode("def main(argv):\n    return");
  auto b = (*tok)->Encode("import os\nimport sys\n");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, ref["cases"][0]["prompt"].get<std::vector<int64_t>>());
  EXPECT_EQ(*b, ref["cases"][1]["prompt"].get<std::vector<int64_t>>());
}

TEST(BpeTokenizer, RefusesWhatItDoesNotImplement) {
  TempDir dir;
  WriteFile(dir.Sub("tokenizer.json"), R"({"model": {"type": "Unigram", "vocab": []}})");
  auto t = verify::BpeTokenizer::Load(dir.Sub("tokenizer.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().ToString().find("model.type must be BPE"), std::string::npos);
  EXPECT_NE(t.status().ToString().find("tokenizer.json"), std::string::npos);
}

// Inputs the fuzzer (fuzz/tokenizer_fuzz) crashed the loader with: each is now one clear error.
TEST(BpeTokenizer, MalformedFilesFromFuzzingAreOneError) {
  TempDir dir;
  const std::string minimal = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, )";
  const std::pair<std::string, std::string> cases[] = {
      // A Sequence pre-tokenizer without its list (was a read past a const JSON object: undefined behaviour).
      {ReadFile(FixturePath("fuzz-regressions/tokenizer-sequence-without-list.json")), "pretokenizers"},
      {minimal + R"("pre_tokenizer": {"type": "Sequence"}})", "pretokenizers"},
      // Token ids that indexed outside the id table or sized it to petabytes (found on 15 cores, 9 minutes).
      {ReadFile(FixturePath("fuzz-regressions/tokenizer-huge-vocab-id.json")), "[0, 2^24)"},
      {ReadFile(FixturePath("fuzz-regressions/tokenizer-negative-added-id.json")), "[0, 2^24)"},
      {minimal + R"("added_tokens": [{"content": "x", "id": -1}]})", "[0, 2^24)"},
      // Fields of the wrong JSON type (were escaped exceptions).
      {minimal + R"("added_tokens": [{"content": 1, "id": "x"}]})", "unexpected JSON type"},
      {minimal + R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [7]}})", "unexpected JSON type"},
  };
  for (const auto& [json, rule] : cases) {
    WriteFile(dir.Sub("tokenizer.json"), json);
    auto t = verify::BpeTokenizer::Load(dir.Sub("tokenizer.json"));
    ASSERT_FALSE(t.ok()) << json.substr(0, 80);
    EXPECT_NE(t.status().ToString().find(rule), std::string::npos) << t.status().ToString();
    EXPECT_NE(t.status().ToString().find("tokenizer.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace forge::testing
