// Byte-level BPE as Qwen's tokenizer.json defines it (Hugging Face `tokenizers`): added/special tokens
// matched literally first, NFC normalization (ICU), the Split pre-tokenizer's regex (PCRE2 with Unicode
// properties, "isolated" behaviour), GPT-2 byte-to-unicode mapping, then merges by rank. Decoding maps the
// byte-level characters back to bytes (invalid UTF-8 becomes U+FFFD, as `tokenizers` does).
//
// Only what Qwen3.5/3.6 tokenizers use is accepted; anything else is refused with the field named.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "forge/base/status.h"

namespace forge::verify {

class BpeTokenizer {
 public:
  ~BpeTokenizer();
  static Result<std::unique_ptr<BpeTokenizer>> Load(const std::string& tokenizer_json_path);

  Result<std::vector<int64_t>> Encode(const std::string& text) const;
  std::string Decode(const std::vector<int64_t>& ids) const;
  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }

 private:
  BpeTokenizer() = default;
  static Result<std::unique_ptr<BpeTokenizer>> LoadJson(const std::string& tokenizer_json_path);
  void EncodeWord(const std::string& byte_level, std::vector<int64_t>& out) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> is_added_;
  struct PairHash {
    size_t operator()(const std::pair<std::string, std::string>& p) const {
      return std::hash<std::string>()(p.first) * 31 + std::hash<std::string>()(p.second);
    }
  };
  std::unordered_map<std::pair<std::string, std::string>, int64_t, PairHash> merge_rank_;
  std::vector<std::pair<std::string, int64_t>> added_;  // content, id (longest first)
  bool nfc_ = false;
  struct Regex;
  std::unique_ptr<Regex> regex_;
  std::string byte_to_char_[256];
  std::unordered_map<std::string, uint8_t> char_to_byte_;
  std::string path_;
};

}  // namespace forge::verify
