#include "forge/base/json_text.h"

#include <fmt/format.h>

#include <set>
#include <vector>

namespace forge {
namespace {

using json = nlohmann::json;

// Accepts everything a DOM parse would and tracks nesting depth and each open object's keys.
class ValidatingSax {
 public:
  explicit ValidatingSax(const JsonParseOptions& o) : options_(o) {}

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return Open(true); }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) { return Open(false); }
  bool end_array() { return Close(); }
  bool key(json::string_t& k) {
    if (!options_.reject_duplicate_keys) return true;
    if (keys_.back().insert(k).second) return true;
    error_ = fmt::format("duplicate key '{}'", k);
    return false;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    error_ = e.what();
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  bool Open(bool object) {
    if (++depth_ > options_.max_depth) {
      error_ = fmt::format("nested deeper than {} levels", options_.max_depth);
      return false;
    }
    if (options_.reject_duplicate_keys) {
      if (object) keys_.emplace_back();
      is_object_.push_back(object);
    }
    return true;
  }
  bool Close() {
    --depth_;
    if (options_.reject_duplicate_keys) {
      if (is_object_.back()) keys_.pop_back();
      is_object_.pop_back();
    }
    return true;
  }
  const JsonParseOptions& options_;
  int depth_ = 0;
  std::vector<std::set<std::string>> keys_;
  std::vector<bool> is_object_;
  std::string error_;
};

}  // namespace

Result<json> ParseJsonText(std::string_view text, const JsonParseOptions& options) {
  ValidatingSax sax(options);
  if (!json::sax_parse(text.begin(), text.end(), &sax)) {
    return Status::Invalid(sax.error().empty() ? "not valid JSON" : sax.error());
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // not expected after the SAX pass accepted it
    return Status::Invalid(e.what());
  }
}

Result<json> ParseJsonFileText(std::string_view text, const std::string& path, const std::string& what) {
  auto j = ParseJsonText(text);
  if (!j.ok())
    return Status::Invalid(fmt::format("{} is not valid JSON: {}", what, j.status().message()), path);
  return j;
}

}  // namespace forge
