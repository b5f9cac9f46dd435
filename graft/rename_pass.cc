#include "graft/rename_pass.h"

#include "forge/ckpt/tensor_names.h"

namespace forge::graft {
namespace {

Result<plan::Plan> RenameAll(const plan::Plan& in, const std::function<std::string(const std::string&)>& f) {
  plan::Plan out;
  for (const auto& t : in.tensors) out.tensors.push_back({f(t.name), t.expr});
  return out;
}

}  // namespace

std::string MlxName(const std::string& name) {
  SplitName s = SplitTensorName(name);
  switch (s.part) {
    case ModelPart::kLanguageModel: return "language_model.model." + s.rel;
    case ModelPart::kLmHead: return "language_model.lm_head." + s.rel;
    case ModelPart::kMtp: return "language_model.mtp." + s.rel;
    case ModelPart::kVision: return "vision_tower." + s.rel;
    case ModelPart::kOther: break;
  }
  return name;
}

std::string HfName(const std::string& name, HfNaming naming) {
  SplitName s = SplitTensorName(name);
  switch (s.part) {
    case ModelPart::kLanguageModel: return (naming == HfNaming::kVlm ? "model.language_model." : "model.") + s.rel;
    case ModelPart::kLmHead: return "lm_head." + s.rel;
    case ModelPart::kMtp: return "mtp." + s.rel;
    case ModelPart::kVision: return "model.visual." + s.rel;
    case ModelPart::kOther: break;
  }
  return name;
}

Result<plan::Plan> RenameToMlx(const plan::Plan& in) { return RenameAll(in, MlxName); }
Result<plan::Plan> RenameToHf(const plan::Plan& in, HfNaming naming) {
  return RenameAll(in, [naming](const std::string& n) { return HfName(n, naming); });
}

}  // namespace forge::graft
