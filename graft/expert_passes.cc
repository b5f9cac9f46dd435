#include "graft/expert_passes.h"

#include <map>
#include <regex>

#include <fmt/format.h>

#include "graft/pass_util.h"

namespace forge::graft {
namespace {

const std::regex kSwitch(R"((.*\.mlp)\.switch_mlp\.(gate|up|down)_proj\.weight)");

}  // namespace

Result<plan::Plan> StackExpertsToSwitchMlp(const plan::Plan& in) {
  plan::Plan out;
  // (base, proj) -> expert index -> expression; emitted where the group's first member stood.
  std::map<std::pair<std::string, std::string>, std::map<int, plan::ExprPtr>> groups;
  std::map<std::pair<std::string, std::string>, size_t> slot;
  std::string base, proj;
  int expert = 0;
  for (const auto& t : in.tensors) {
    if (ParsePerExpertName(t.name, &base, &expert, &proj)) {
      auto key = std::make_pair(base, proj);
      if (!slot.count(key)) {
        slot[key] = out.tensors.size();
        out.tensors.push_back({fmt::format("{}.switch_mlp.{}_proj.weight", key.first, key.second), nullptr});
      }
      groups[key][expert] = t.expr;
    } else if (EndsWith(t.name, ".mlp.experts.gate_up_proj")) {
      const std::string fused_base = t.name.substr(0, t.name.size() - std::string(".experts.gate_up_proj").size());
      const auto& s = t.expr->meta.shape;
      if (s.size() != 3 || s[1] % 2 != 0) {
        return Status::Error(ExitCode::kStructural, "fused gate_up_proj must be [E, 2I, H]", {}, t.name);
      }
      FORGE_ASSIGN_OR_RETURN(plan::ExprPtr gate, plan::Slice(t.expr, 1, 0, s[1] / 2));
      FORGE_ASSIGN_OR_RETURN(plan::ExprPtr up, plan::Slice(t.expr, 1, s[1] / 2, s[1]));
      out.tensors.push_back({fused_base + ".switch_mlp.gate_proj.weight", gate});
      out.tensors.push_back({fused_base + ".switch_mlp.up_proj.weight", up});
    } else if (EndsWith(t.name, ".mlp.experts.down_proj")) {
      const std::string down_base = t.name.substr(0, t.name.size() - std::string(".experts.down_proj").size());
      out.tensors.push_back({down_base + ".switch_mlp.down_proj.weight", t.expr});
    } else {
      out.tensors.push_back(t);
    }
  }
  for (auto& [key, experts] : groups) {
    std::vector<plan::ExprPtr> parts;
    int expected = 0;
    for (const auto& [e, expr] : experts) {
      if (e != expected) {
        return Status::Error(ExitCode::kStructural,
                             fmt::format("expert {} of {}.experts ({}_proj) is missing", expected, key.first, key.second));
      }
      parts.push_back(expr);
      ++expected;
    }
    FORGE_ASSIGN_OR_RETURN(out.tensors[slot[key]].expr, plan::Stack(parts));
  }
  return out;
}

Result<plan::Plan> UnstackSwitchMlp(const plan::Plan& in, ExpertLayout backbone, ExpertLayout mtp) {
  plan::Plan out;
  std::map<std::string, std::map<std::string, plan::ExprPtr>> fused_parts;  // base -> proj -> expr
  std::map<std::string, size_t> fused_slot;
  std::smatch m;
  for (const auto& t : in.tensors) {
    const ExpertLayout layout = PartOf(t.name) == ModelPart::kMtp ? mtp : backbone;
    if (layout == ExpertLayout::kSwitchMlp || !std::regex_match(t.name, m, kSwitch)) {
      out.tensors.push_back(t);
      continue;
    }
    const std::string base = m[1].str(), proj = m[2].str();
    const auto& s = t.expr->meta.shape;
    if (s.size() != 3) return Status::Error(ExitCode::kStructural, "switch_mlp weight must be 3-D", {}, t.name);
    if (layout == ExpertLayout::kPerExpert) {
      for (uint64_t e = 0; e < s[0]; ++e) {
        FORGE_ASSIGN_OR_RETURN(plan::ExprPtr one, plan::Slice(t.expr, 0, e, e + 1));
        FORGE_ASSIGN_OR_RETURN(one, plan::Reshape(one, {s[1], s[2]}));
        out.tensors.push_back({fmt::format("{}.experts.{}.{}_proj.weight", base, e, proj), one});
      }
    } else if (proj == "down") {
      out.tensors.push_back({base + ".experts.down_proj", t.expr});
    } else {
      if (!fused_slot.count(base)) {
        fused_slot[base] = out.tensors.size();
        out.tensors.push_back({base + ".experts.gate_up_proj", nullptr});
      }
      fused_parts[base][proj] = t.expr;
    }
  }
  for (auto& [base, parts] : fused_parts) {
    if (!parts.count("gate") || !parts.count("up")) {
      return Status::Error(ExitCode::kStructural, "switch_mlp gate_proj and up_proj must both exist to fuse", {}, base);
    }
    FORGE_ASSIGN_OR_RETURN(out.tensors[fused_slot[base]].expr, plan::Concat({parts["gate"], parts["up"]}, 1));
  }
  return out;
}

}  // namespace forge::graft
