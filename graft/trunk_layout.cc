#include "graft/trunk_layout.h"

#include <filesystem>

#include "forge/st/header_writer.h"

namespace forge::graft {
namespace fs = std::filesystem;

Result<TrunkLayout> KeepTrunk(const Checkpoint& src, const std::function<bool(const std::string&)>& drop) {
  TrunkLayout t;
  for (const auto& shard : src.shards()) {
    const std::string file = fs::path(shard->path()).filename().string();
    bool touched = false;
    for (const auto& info : shard->header().tensors) touched |= drop(info.name);
    if (!touched) {
      t.layout.carried.push_back({shard->path(), file});
      for (const auto& info : shard->header().tensors) t.weight_map[info.name] = file;
      continue;
    }
    std::vector<st::TensorSpec> specs;
    std::map<std::string, size_t> index;
    for (const auto& info : shard->header().tensors) {
      if (drop(info.name)) {
        t.dropped.insert(info.name);
        continue;
      }
      FORGE_ASSIGN_OR_RETURN(plan::ExprPtr e, plan::Source({shard.get(), &info}));
      index[info.name] = t.plan.tensors.size();
      t.plan.tensors.push_back({info.name, e});
      specs.push_back({info.name, info.dtype, info.shape});
      t.weight_map[info.name] = file;
    }
    if (specs.empty()) continue;  // the shard held only dropped tensors
    plan::ShardPlan sp;
    sp.file_name = file;
    FORGE_ASSIGN_OR_RETURN(sp.layout, st::LayoutTensors(specs));
    for (const auto& l : sp.layout) sp.plan_index.push_back(index[l.name]);
    FORGE_ASSIGN_OR_RETURN(sp.header, st::SerializeHeader(sp.layout, shard->header().metadata));
    t.layout.new_shards.push_back(std::move(sp));
  }
  return t;
}

Result<plan::ShardPlan> ShardOf(const plan::Plan& plan, const std::vector<std::string>& names,
                                const std::string& file_name,
                                const std::map<std::string, std::string>& metadata) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.tensors.size(); ++i) index[plan.tensors[i].name] = i;
  std::vector<st::TensorSpec> specs;
  for (const auto& n : names) {
    auto it = index.find(n);
    if (it == index.end()) return Status::Invalid("not in the plan", file_name, n);
    const auto& e = plan.tensors[it->second].expr;
    specs.push_back({n, e->meta.dtype, e->meta.shape});
  }
  plan::ShardPlan sp;
  sp.file_name = file_name;
  FORGE_ASSIGN_OR_RETURN(sp.layout, st::LayoutTensors(specs));
  for (const auto& l : sp.layout) sp.plan_index.push_back(index.at(l.name));
  FORGE_ASSIGN_OR_RETURN(sp.header, st::SerializeHeader(sp.layout, metadata));
  return sp;
}

Status AddHeadShard(TrunkLayout* t, const std::vector<std::string>& head_names, const std::string& file_name,
                    const std::map<std::string, std::string>& metadata, bool listed_in_index) {
  FORGE_ASSIGN_OR_RETURN(plan::ShardPlan sp, ShardOf(t->plan, head_names, file_name, metadata));
  if (listed_in_index)
    for (const auto& n : head_names) t->weight_map[n] = file_name;
  t->layout.new_shards.push_back(std::move(sp));
  return Status();
}

nlohmann::json IndexFor(const TrunkLayout& t, const Checkpoint& src) {
  std::map<std::string, uint64_t> sizes;  // tensor bytes by name, from the plans and the source headers
  for (const auto& s : t.layout.new_shards)
    for (const auto& l : s.layout) sizes[l.name] = l.nbytes();
  for (const auto& [name, ref] : src.tensors()) sizes.emplace(name, ref.info->nbytes());
  uint64_t total = 0;
  nlohmann::json wm = nlohmann::json::object();
  for (const auto& [name, file] : t.weight_map) {
    wm[name] = file;
    total += sizes[name];
  }
  return {{"metadata", {{"total_size", total}}}, {"weight_map", wm}};
}

}  // namespace forge::graft
