#include "graft/layout_passes.h"

#include "graft/pass_util.h"

namespace forge::graft {
namespace {

bool IsPatchEmbed(const std::string& name) { return EndsWith(name, "patch_embed.proj.weight"); }

// Which layout a 5-D patch embedding is in: true = HF channels-first.
bool PatchIsChannelsFirst(const plan::Shape& s, uint64_t c, bool source_is_hf) {
  const bool first = s[1] == c, last = s[4] == c;
  if (first && last) return source_is_hf;
  return first;
}

}  // namespace

Result<plan::Plan> AxesToMlx(const plan::Plan& in, uint64_t in_channels, bool source_is_hf) {
  plan::Plan out;
  for (const auto& t : in.tensors) {
    plan::ExprPtr e = t.expr;
    const auto& s = e->meta.shape;
    if (RoleOf(t.name) == TensorRole::kConv1d && s.size() == 3 && s[1] == 1 && s[2] != 1) {
      FORGE_ASSIGN_OR_RETURN(e, plan::MoveAxis(e, 2, 1));
    } else if (IsPatchEmbed(t.name) && s.size() == 5 && PatchIsChannelsFirst(s, in_channels, source_is_hf)) {
      FORGE_ASSIGN_OR_RETURN(e, plan::MoveAxis(e, 1, 4));
    }
    out.tensors.push_back({t.name, e});
  }
  return out;
}

Result<plan::Plan> AxesToHf(const plan::Plan& in, uint64_t in_channels, bool source_is_hf) {
  plan::Plan out;
  for (const auto& t : in.tensors) {
    plan::ExprPtr e = t.expr;
    const auto& s = e->meta.shape;
    if (RoleOf(t.name) == TensorRole::kConv1d && s.size() == 3 && s[2] == 1 && s[1] != 1) {
      FORGE_ASSIGN_OR_RETURN(e, plan::MoveAxis(e, 1, 2));
    } else if (IsPatchEmbed(t.name) && s.size() == 5 && !PatchIsChannelsFirst(s, in_channels, source_is_hf)) {
      FORGE_ASSIGN_OR_RETURN(e, plan::MoveAxis(e, 4, 1));
    }
    out.tensors.push_back({t.name, e});
  }
  return out;
}

}  // namespace forge::graft
