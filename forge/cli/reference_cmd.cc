#include "forge/cli/reference_cmd.h"

#include <cstdio>

#include "forge/base/thread_pool.h"
#include "verify/model/decoder.h"
#include "verify/spec/reference_check.h"

namespace forge::cli {

int RunReferenceCheck(const ReferenceCheckOptions& o, const CommonFlags& flags) {
  if (o.mtp_hidden != "post-norm" && o.mtp_hidden != "pre-norm") {
    return ReportError(Status::Error(ExitCode::kUsage, "--mtp-hidden must be post-norm or pre-norm"), flags);
  }
  if (!(o.tolerance > 0) || !(o.tie_gap >= 0)) {
    return ReportError(Status::Error(ExitCode::kUsage, "--tolerance must be > 0 and --tie-gap >= 0"), flags);
  }
  auto ckpt = OpenInput(o.model);
  if (!ckpt.ok()) return ReportError(ckpt.status(), flags);
  auto weights = verify::model::LoadModelWeights(**ckpt);
  if (!weights.ok()) return ReportError(weights.status(), flags);
  ThreadPool pool(o.threads);
  verify::model::Decoder dec(*weights, &pool);
  verify::model::MtpHead mtp(*weights, &pool);
  verify::spec::ReferenceOptions ro;
  ro.mtp_post_norm = o.mtp_hidden == "post-norm";
  ro.tolerance = o.tolerance;
  ro.tie_gap = o.tie_gap;
  auto report = verify::spec::CompareWithReference(dec, weights->has_mtp ? &mtp : nullptr, o.reference, ro);
  if (!report.ok()) return ReportError(report.status(), flags);
  const int code = report->ok(ro) ? 0 : static_cast<int>(ExitCode::kVerifyFailed);
  if (flags.json) {
    nlohmann::json j = verify::spec::ReferenceJson(*report, ro);
    j["model"] = o.model;
    j["notes"] = weights->notes;
    j["exit_code"] = code;
    PrintJson(j);
  } else {
    std::printf("%s", verify::spec::ReferenceText(*report, ro).c_str());
  }
  return code;
}

}  // namespace forge::cli
