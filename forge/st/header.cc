#include "forge/st/header.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "forge/base/json_text.h"
#include "forge/base/utf8.h"

namespace forge::st {
namespace {

using json = nlohmann::json;

Status Fail(const std::string& rule, const std::string& tensor = {}) { return Status::Invalid(rule, {}, tensor); }

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Parses JSON while rejecting a key repeated inside any one object (a DOM parse keeps one silently). One
// linear SAX pass checks keys and nesting, then the DOM is built: nlohmann's callback parser, used before,
// rescans the parent object at every object end (quadratic in the tensor count).
Result<json> ParseRejectingDuplicates(const char* text, size_t n) {
  JsonParseOptions o;
  o.reject_duplicate_keys = true;
  auto doc = ParseJsonText(std::string_view(text, n), o);
  if (doc.ok()) return doc;
  const std::string& why = doc.status().message();
  if (why.rfind("duplicate key", 0) == 0) return Fail(fmt::format("{} in header (DuplicateKey)", why));
  return Fail(fmt::format("header is not valid JSON (InvalidHeaderDeserialization): {}", why));
}

Result<uint64_t> NonNegativeInt(const json& v, const std::string& tensor, const char* field) {
  if (!v.is_number_unsigned()) {
    return Fail(fmt::format("'{}' must hold non-negative integers, got {} (InvalidHeaderDeserialization)",
                            field, v.dump()),
                tensor);
  }
  return v.get<uint64_t>();
}

Result<TensorInfo> ParseTensorEntry(const std::string& name, const json& entry, Header* header) {
  if (!entry.is_object()) {
    return Fail("tensor entry must be an object (InvalidHeaderDeserialization)", name);
  }
  TensorInfo info;
  info.name = name;
  auto dt = entry.find("dtype");
  if (dt == entry.end() || !dt->is_string()) return Fail("missing string field 'dtype' (InvalidHeaderDeserialization)", name);
  auto parsed = ParseDType(dt->get<std::string>());
  if (!parsed) return Fail(fmt::format("unknown dtype '{}' (UnknownDtype)", dt->get<std::string>()), name);
  info.dtype = *parsed;

  auto sh = entry.find("shape");
  if (sh == entry.end() || !sh->is_array()) return Fail("missing array field 'shape' (InvalidHeaderDeserialization)", name);
  for (const auto& d : *sh) {
    FORGE_ASSIGN_OR_RETURN(uint64_t dim, NonNegativeInt(d, name, "shape"));
    info.shape.push_back(dim);
  }
  auto off = entry.find("data_offsets");
  if (off == entry.end() || !off->is_array() || off->size() != 2) {
    return Fail("'data_offsets' must be an array of two integers (InvalidHeaderDeserialization)", name);
  }
  FORGE_ASSIGN_OR_RETURN(info.begin, NonNegativeInt((*off)[0], name, "data_offsets"));
  FORGE_ASSIGN_OR_RETURN(info.end, NonNegativeInt((*off)[1], name, "data_offsets"));
  if (info.end < info.begin) {
    return Fail(fmt::format("data_offsets [{}, {}] end before begin (InvalidOffset)", info.begin, info.end), name);
  }
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets") {
      header->unknown_fields.push_back(name + ": " + it.key());
    }
  }
  uint64_t numel = 0, nbits = 0;
  if (!ShapeNumel(info.shape, &numel) ||
      __builtin_mul_overflow(numel, static_cast<uint64_t>(DTypeBits(info.dtype)), &nbits)) {
    return Fail("shape overflows (ValidationOverflow)", name);
  }
  if (nbits % 8 != 0) return Fail("element bits are not a whole number of bytes (MisalignedSlice)", name);
  if (info.end - info.begin != nbits / 8) {
    return Fail(fmt::format("data_offsets [{}, {}] span {} bytes but {} {} needs {} (TensorInvalidInfo)",
                            info.begin, info.end, info.end - info.begin, DTypeName(info.dtype),
                            json(info.shape).dump(), nbits / 8),
                name);
  }
  return info;
}

}  // namespace

uint64_t TensorInfo::numel() const {
  uint64_t n = 0;
  ShapeNumel(shape, &n);
  return n;
}

bool ShapeNumel(const std::vector<uint64_t>& shape, uint64_t* out) {
  uint64_t n = 1;
  for (uint64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return false;
  }
  *out = n;
  return true;
}

const TensorInfo* Header::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors[it->second];
}

void Header::BuildIndex() {
  index_.clear();
  for (size_t i = 0; i < tensors.size(); ++i) index_[tensors[i].name] = i;
}

Result<Header> ParseHeader(const uint8_t* bytes, uint64_t available, uint64_t file_size) {
  if (file_size < 8 || available < 8) return Fail("file is shorter than the 8-byte header length (HeaderTooSmall)");
  Header h;
  h.header_size = ReadLe64(bytes);
  if (h.header_size > kMaxHeaderSize) {
    return Fail(fmt::format("header length {} exceeds the 100 MB limit (HeaderTooLarge)", h.header_size));
  }
  h.data_start = 8 + h.header_size;
  if (h.data_start > file_size || h.data_start > available) {
    return Fail(fmt::format("header length {} runs past the end of the {}-byte file (InvalidHeaderLength); "
                            "incomplete download?",
                            h.header_size, file_size));
  }
  const uint8_t* text = bytes + 8;
  if (!IsValidUtf8(std::string_view(reinterpret_cast<const char*>(text), h.header_size))) return Fail("header is not valid UTF-8 (InvalidHeader)");
  FORGE_ASSIGN_OR_RETURN(json doc, ParseRejectingDuplicates(reinterpret_cast<const char*>(text), h.header_size));
  if (!doc.is_object()) return Fail("header is not a JSON object (InvalidHeaderDeserialization)");

  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Fail("__metadata__ must be an object of strings (InvalidHeaderDeserialization)");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          return Fail(fmt::format("__metadata__ value of '{}' is not a string (InvalidHeaderDeserialization)", m.key()));
        }
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    FORGE_ASSIGN_OR_RETURN(TensorInfo info, ParseTensorEntry(it.key(), *it, &h));
    h.tensors.push_back(std::move(info));
  }

  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& t : h.tensors) {
    if (t.begin != expected) {
      return Fail(fmt::format("data_offsets [{}, {}] {} the previous tensor's end {} (InvalidOffset)", t.begin, t.end,
                              t.begin < expected ? "overlap" : "leave a gap after", expected),
                  t.name);
    }
    expected = t.end;
  }
  if (expected != file_size - h.data_start) {
    return Fail(fmt::format("tensors cover {} bytes of data but the file holds {} (MetadataIncompleteBuffer){}",
                            expected, file_size - h.data_start,
                            expected > file_size - h.data_start ? "; incomplete download?" : ""));
  }
  h.BuildIndex();
  return h;
}

}  // namespace forge::st
