#include "forge/plan/shard_layout.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace forge::plan {

Result<std::vector<ShardPlan>> LayoutShards(const Plan& plan, uint64_t max_shard_size,
                                            const std::map<std::string, std::string>& metadata) {
  std::vector<size_t> order(plan.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return plan.tensors[a].name < plan.tensors[b].name; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (plan.tensors[order[i]].name == plan.tensors[order[i - 1]].name) {
      return Status::Invalid("plan has two output tensors with the same name", {}, plan.tensors[order[i]].name);
    }
  }
  std::vector<std::vector<size_t>> groups(1);
  uint64_t current = 0;
  for (size_t idx : order) {
    uint64_t n = plan.tensors[idx].expr->meta.nbytes();
    if (!groups.back().empty() && current + n > max_shard_size) {
      groups.emplace_back();
      current = 0;
    }
    groups.back().push_back(idx);
    current += n;
  }
  std::vector<ShardPlan> shards;
  const size_t count = groups.size();
  for (size_t s = 0; s < count; ++s) {
    ShardPlan sp;
    sp.file_name = count == 1 ? "model.safetensors" : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, count);
    std::vector<st::TensorSpec> specs;
    std::map<std::string, size_t> by_name;
    for (size_t idx : groups[s]) {
      const auto& t = plan.tensors[idx];
      specs.push_back({t.name, t.expr->meta.dtype, t.expr->meta.shape});
      by_name[t.name] = idx;
    }
    FORGE_ASSIGN_OR_RETURN(sp.layout, st::LayoutTensors(specs));
    for (const auto& t : sp.layout) sp.plan_index.push_back(by_name[t.name]);
    FORGE_ASSIGN_OR_RETURN(sp.header, st::SerializeHeader(sp.layout, metadata));
    shards.push_back(std::move(sp));
  }
  return shards;
}

Result<uint64_t> ParseByteSize(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return Status::Error(ExitCode::kUsage, fmt::format("invalid size '{}' (e.g. 5GB, 500MB)", text));
  // Digits only, so the one failure left is overflow: refused like any other bad size.
  uint64_t value = 0;
  for (size_t k = 0; k < i; ++k) {
    if (__builtin_mul_overflow(value, 10u, &value) || __builtin_add_overflow(value, text[k] - '0', &value)) {
      return Status::Error(ExitCode::kUsage, fmt::format("size '{}' is too large", text));
    }
  }
  std::string unit = text.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::map<std::string, uint64_t> units = {{"", 1}, {"B", 1}, {"KB", 1000}, {"MB", 1000000},
                                                 {"GB", 1000000000ull}, {"TB", 1000000000000ull},
                                                 {"KIB", 1ull << 10}, {"MIB", 1ull << 20}, {"GIB", 1ull << 30},
                                                 {"TIB", 1ull << 40}};
  auto it = units.find(unit);
  if (it == units.end() || value == 0) {
    return Status::Error(ExitCode::kUsage, fmt::format("invalid size '{}' (e.g. 5GB, 500MB)", text));
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(value, it->second, &bytes)) {
    return Status::Error(ExitCode::kUsage, fmt::format("size '{}' is too large", text));
  }
  return bytes;
}

}  // namespace forge::plan
