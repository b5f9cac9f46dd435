#include "verify/tokenizer/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <queue>
#include <tuple>
#include <climits>
#include <nlohmann/json.hpp>

#include "forge/base/json_text.h"
#include "forge/base/fs_util.h"

namespace forge::verify {

struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

BpeTokenizer::~BpeTokenizer() = default;

namespace {

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Length of the UTF-8 sequence starting with byte c (1 for stray continuation bytes).
size_t Utf8Len(unsigned char c) {
  return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

// What `String::from_utf8_lossy` does: each maximal invalid sequence becomes U+FFFD.
std::string LossyUtf8(const std::string& in) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    size_t len = Utf8Len(c);
    bool ok = len > 1 || c < 0x80;
    if (len > 1) {
      if (i + len > in.size()) ok = false;
      for (size_t j = 1; ok && j < len; ++j) ok = (static_cast<unsigned char>(in[i + j]) & 0xC0) == 0x80;
    }
    if (ok) {
      out.append(in, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
      while (i < in.size() && (static_cast<unsigned char>(in[i]) & 0xC0) == 0x80 && len > 1) ++i, --len;
    }
  }
  return out;
}

Result<std::string> Nfc(const std::string& text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return text;
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* nfc = unorm2_getNFCInstance(&err);
  int32_t len16 = 0;
  u_strFromUTF8(nullptr, 0, &len16, text.data(), static_cast<int32_t>(text.size()), &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err))
    return Status::Invalid("prompt text is not valid UTF-8");
  err = U_ZERO_ERROR;
  std::u16string src(static_cast<size_t>(len16), u'\0');
  u_strFromUTF8(src.data(), len16, nullptr, text.data(), static_cast<int32_t>(text.size()), &err);
  const int32_t cap = len16 * 3 + 16;
  std::u16string dst(static_cast<size_t>(cap), u'\0');
  const int32_t n = unorm2_normalize(nfc, src.data(), len16, dst.data(), cap, &err);
  if (U_FAILURE(err)) return Status::Invalid("prompt text is not valid UTF-8");
  int32_t len8 = 0;
  u_strToUTF8(nullptr, 0, &len8, dst.data(), n, &err);
  err = U_ZERO_ERROR;
  std::string out(static_cast<size_t>(len8), '\0');
  u_strToUTF8(out.data(), len8, nullptr, dst.data(), n, &err);
  if (U_FAILURE(err)) return Status::Invalid("prompt text is not valid UTF-8");
  return out;
}

}  // namespace

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Load(const std::string& path) {
  // A field of an unexpected JSON type (a number where a string belongs...) throws from nlohmann's get/value:
  // one clear error instead of an escaped exception (found by fuzz/tokenizer_fuzz).
  try {
    return LoadJson(path);
  } catch (const nlohmann::json::exception& e) {
    return Status::Invalid(std::string("tokenizer: a field has an unexpected JSON type (") + e.what() + ")", path);
  }
}

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::LoadJson(const std::string& path) {
  auto text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  auto bad = [&](const std::string& why) { return Status::Invalid("tokenizer: " + why, path); };
  auto parsed = ParseJsonText(*text);
  if (!parsed.ok()) return bad("not valid JSON: " + parsed.status().message());
  const nlohmann::json j = std::move(parsed).value();
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) return bad("no 'model' object");
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->path_ = path;
  const auto& model = j["model"];
  if (model.value("type", "") != "BPE") return bad("model.type must be BPE");
  if (!model.contains("vocab") || !model["vocab"].is_object()) return bad("model.vocab must be an object");
  // Ids index a table: bounded, so a hostile file can neither index outside it nor size it to exabytes
  // (both found by fuzz/tokenizer_fuzz). Real vocabularies are below 300 k.
  constexpr int64_t kMaxTokenId = int64_t{1} << 24;
  int64_t max_id = -1;
  for (const auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxTokenId)
      return bad("vocab id of '" + tok + "' is not an integer in [0, 2^24)");
    t->vocab_[tok] = id.get<int64_t>();
    max_id = std::max(max_id, id.get<int64_t>());
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      if (!a.contains("content") || !a.contains("id")) return bad("added_tokens entry without content/id");
      const int64_t id = a["id"].get<int64_t>();
      if (id < 0 || id >= kMaxTokenId) return bad(fmt::format("added token id {} is not in [0, 2^24)", id));
      t->added_.emplace_back(a["content"].get<std::string>(), id);
      max_id = std::max(max_id, id);
    }
  }
  t->id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  t->is_added_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [tok, id] : t->vocab_) t->id_to_token_[static_cast<size_t>(id)] = tok;
  for (const auto& [content, id] : t->added_) {
    t->id_to_token_[static_cast<size_t>(id)] = content;
    t->is_added_[static_cast<size_t>(id)] = true;
  }
  std::stable_sort(t->added_.begin(), t->added_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  if (model.contains("merges") && model["merges"].is_array()) {
    int64_t rank = 0;
    for (const auto& m : model["merges"]) {
      std::string a, b;
      if (m.is_array() && m.size() == 2) {
        a = m[0].get<std::string>(), b = m[1].get<std::string>();
      } else if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) return bad("merge '" + s + "' is not 'a b'");
        a = s.substr(0, sp), b = s.substr(sp + 1);
      } else {
        return bad("merges entries must be [a, b] or 'a b'");
      }
      t->merge_rank_.emplace(std::make_pair(a, b), rank++);
    }
  }
  // Normalizer: none or NFC (Qwen uses NFC).
  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    const auto& n = j["normalizer"];
    if (n.value("type", "") != "NFC")
      return bad("normalizer '" + n.value("type", std::string("?")) + "' is not supported (NFC or none)");
    t->nfc_ = true;
  }
  // Pre-tokenizer: Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)] as Qwen ships it.
  std::string pattern;
  const auto& pre = j.value("pre_tokenizer", nlohmann::json());
  std::vector<nlohmann::json> steps;
  if (pre.is_object() && pre.value("type", "") == "Sequence") {
    // find(), not operator[]: on a const object a missing key is undefined behaviour (found by fuzzing).
    const auto list = pre.find("pretokenizers");
    if (list == pre.end() || !list->is_array()) return bad("Sequence pre-tokenizer without a 'pretokenizers' list");
    for (const auto& s : *list) steps.push_back(s);
  } else if (pre.is_object()) {
    steps.push_back(pre);
  }
  bool byte_level = false;
  for (const auto& s : steps) {
    const std::string type = s.value("type", "");
    if (type == "Split") {
      if (!s.contains("pattern") || !s["pattern"].contains("Regex"))
        return bad("Split pre-tokenizer without a Regex pattern");
      if (s.value("behavior", "") != "Isolated" || s.value("invert", false))
        return bad("Split behaviour other than Isolated is not supported");
      pattern = s["pattern"]["Regex"].get<std::string>();
    } else if (type == "ByteLevel") {
      if (s.value("use_regex", true)) {  // GPT-2's own pattern
        pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
      }
      if (s.value("add_prefix_space", false)) return bad("ByteLevel add_prefix_space is not supported");
      byte_level = true;
    } else {
      return bad("pre-tokenizer '" + type + "' is not supported");
    }
  }
  if (!byte_level || pattern.empty()) return bad("a byte-level pre-tokenizer with a split regex is required");
  int err = 0;
  PCRE2_SIZE err_off = 0;
  t->regex_ = std::make_unique<Regex>();
  t->regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                  PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!t->regex_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return bad(fmt::format("pre-tokenizer regex does not compile at {}: {}", err_off,
                           reinterpret_cast<const char*>(msg)));
  }
  // GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256u + static_cast<uint32_t>(next++);
    t->byte_to_char_[b] = Utf8(cp);
    t->char_to_byte_[t->byte_to_char_[b]] = static_cast<uint8_t>(b);
  }
  return t;
}

void BpeTokenizer::EncodeWord(const std::string& word, std::vector<int64_t>& out) const {
  // The symbols as a linked list and the candidate merges in a min-heap of (rank, left symbol's start): each
  // step merges the lowest-ranked adjacent pair, the leftmost of equal ranks, as a rescan of all pairs would,
  // but in O(n log n) rather than O(n^2) (a 2 MB word without spaces is one pre-token).
  std::vector<std::string> sym;
  for (size_t i = 0; i < word.size();) {
    const size_t len = Utf8Len(static_cast<unsigned char>(word[i]));
    sym.push_back(word.substr(i, len));
    i += len;
  }
  const size_t n = sym.size();
  std::vector<size_t> next(n), prev(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) next[i] = i + 1, prev[i] = i == 0 ? SIZE_MAX : i - 1;
  // rank, left, and the two symbols' lengths then: symbols only grow, so other lengths mean a stale entry.
  using Candidate = std::tuple<int64_t, size_t, size_t, size_t>;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](size_t left) {
    if (left == SIZE_MAX || next[left] >= n) return;
    auto it = merge_rank_.find({sym[left], sym[next[left]]});
    if (it != merge_rank_.end()) heap.emplace(it->second, left, sym[left].size(), sym[next[left]].size());
  };
  for (size_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const auto [rank, left, len_a, len_b] = heap.top();
    heap.pop();
    const size_t right = next[left];
    if (!alive[left] || right >= n || sym[left].size() != len_a || sym[right].size() != len_b) continue;
    sym[left] += sym[right];
    alive[right] = false;
    next[left] = next[right];
    if (next[left] < n) prev[next[left]] = left;
    push(prev[left]);
    push(left);
  }
  std::vector<std::string> merged;
  for (size_t i = 0; i < n; i = next[i]) merged.push_back(std::move(sym[i]));
  sym = std::move(merged);
  for (const auto& s : sym) {
    auto it = vocab_.find(s);
    if (it != vocab_.end()) {
      out.push_back(it->second);
    } else {  // no byte fallback in Qwen's vocab: every single byte character is a token
      for (size_t i = 0; i < s.size();) {
        const size_t len = Utf8Len(static_cast<unsigned char>(s[i]));
        auto jt = vocab_.find(s.substr(i, len));
        if (jt != vocab_.end()) out.push_back(jt->second);
        i += len;
      }
    }
  }
}

Result<std::vector<int64_t>> BpeTokenizer::Encode(const std::string& text) const {
  std::vector<int64_t> ids;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  auto encode_plain = [&](const std::string& raw) -> Status {
    std::string s = raw;
    if (nfc_) {
      auto n = Nfc(raw);
      if (!n.ok()) return n.status();
      s = *n;
    }
    auto piece = [&](size_t b, size_t e) {
      std::string bl;
      for (size_t i = b; i < e; ++i) bl += byte_to_char_[static_cast<unsigned char>(s[i])];
      EncodeWord(bl, ids);
    };
    size_t pos = 0, last = 0;
    // PCRE2 checks the whole subject's UTF-8 on every call unless told not to: once is enough (O(n) per
    // match made a 2 MB prompt quadratic).
    uint32_t options = 0;
    while (pos < s.size()) {
      const int rc =
          pcre2_match(regex_->code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, options, md, nullptr);
      options = PCRE2_NO_UTF_CHECK;
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) return Status::Invalid("prompt text is not valid UTF-8 for the pre-tokenizer");
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[0] > last) piece(last, ov[0]);  // the gap between matches is a piece of its own (Isolated)
      if (ov[1] > ov[0]) piece(ov[0], ov[1]);
      last = ov[1];
      pos = ov[1] > ov[0] ? ov[1] : ov[1] + Utf8Len(static_cast<unsigned char>(s[ov[1]]));
    }
    if (last < s.size()) piece(last, s.size());
    return Status();
  };
  // Added tokens are matched literally (leftmost, longest) before normalization.
  size_t start = 0, i = 0;
  Status st;
  while (i < text.size() && st.ok()) {
    bool hit = false;
    for (const auto& [content, id] : added_) {
      if (!content.empty() && text.compare(i, content.size(), content) == 0) {
        if (i > start) st = encode_plain(text.substr(start, i - start));
        ids.push_back(id);
        i += content.size();
        start = i;
        hit = true;
        break;
      }
    }
    if (!hit) ++i;
  }
  if (st.ok() && start < text.size()) st = encode_plain(text.substr(start));
  pcre2_match_data_free(md);
  if (!st.ok()) return st;
  return ids;
}

std::string BpeTokenizer::Decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const std::string& tok = id_to_token_[static_cast<size_t>(id)];
    if (is_added_[static_cast<size_t>(id)]) {
      bytes += tok;
      continue;
    }
    for (size_t i = 0; i < tok.size();) {
      const size_t len = Utf8Len(static_cast<unsigned char>(tok[i]));
      auto it = char_to_byte_.find(tok.substr(i, len));
      if (it != char_to_byte_.end()) bytes += static_cast<char>(it->second);
      i += len;
    }
  }
  return LossyUtf8(bytes);
}

}  // namespace forge::verify
