#include "forge/st/header_writer.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

namespace forge::st {

Result<std::vector<TensorInfo>> LayoutTensors(const std::vector<TensorSpec>& specs) {
  std::vector<const TensorSpec*> order;
  std::set<std::string> seen;
  for (const auto& s : specs) {
    if (!seen.insert(s.name).second) return Status::Invalid("duplicate tensor name in output", {}, s.name);
    order.push_back(&s);
  }
  std::sort(order.begin(), order.end(), [](const TensorSpec* a, const TensorSpec* b) {
    if (a->dtype != b->dtype) return a->dtype > b->dtype;
    return a->name < b->name;
  });
  std::vector<TensorInfo> out;
  uint64_t offset = 0;
  for (const TensorSpec* s : order) {
    uint64_t numel = 0, nbits = 0;
    if (!ShapeNumel(s->shape, &numel) ||
        __builtin_mul_overflow(numel, static_cast<uint64_t>(DTypeBits(s->dtype)), &nbits) || nbits % 8 != 0) {
      return Status::Invalid("tensor size overflows or is not whole bytes", {}, s->name);
    }
    TensorInfo t;
    t.name = s->name;
    t.dtype = s->dtype;
    t.shape = s->shape;
    t.begin = offset;
    t.end = offset + nbits / 8;
    offset = t.end;
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::string> SerializeHeader(const std::vector<TensorInfo>& layout,
                                    const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    doc["__metadata__"] = std::move(meta);
  }
  for (const auto& t : layout) {
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = std::string(DTypeName(t.dtype));
    e["shape"] = t.shape;
    e["data_offsets"] = {t.begin, t.end};
    doc[t.name] = std::move(e);
  }
  std::string text = doc.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderSize) return Status::Invalid("header would exceed the 100 MB limit");
  std::string out(8, '\0');
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + text;
}

}  // namespace forge::st
