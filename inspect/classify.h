// What a checkpoint is and whether it is MTP-ready: the analysis behind `forge inspect config`.
// Reads headers and, for the norm-convention evidence, a handful of 1-D norm vectors (kilobytes).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "forge/ckpt/checkpoint.h"
#include "forge/ckpt/expected_tensors.h"
#include "inspect/norm_evidence.h"
#include "inspect/quant_report.h"
#include "inspect/runtime_support.h"

namespace forge::inspect {

enum class MtpStatus { kReady, kAbsent, kDeclaredButMissing, kPresentButUndeclared, kIncomplete };
std::string_view MtpStatusName(MtpStatus s);

struct MtpReport {
  MtpStatus status = MtpStatus::kAbsent;
  int64_t declared_layers = 0;
  bool declared_key_present = false;
  int tensors = 0;                   // tensors under mtp.* (quantization companions included)
  int layers_present = 0;            // distinct mtp.layers.N
  std::vector<std::string> missing;  // expected MTP tensors absent (part-relative names)
  std::string fix;
};

struct Report {
  std::string path;
  std::string format = "unknown";  // hf | mlx | unknown | mixed
  std::vector<std::string> format_evidence;
  bool has_config = false;
  std::string model_type, text_model_type, architecture;
  TextGeometry geometry;
  bool layer_types_derived = false;
  bool vision_config = false;
  int vision_tensors = 0;
  ExpertLayout backbone_layout = ExpertLayout::kNone, mtp_layout = ExpertLayout::kNone;
  NormEvidence norms;
  QuantReport quant;
  MtpReport mtp;
  LayoutReport layout;
  size_t tensor_count = 0;
  uint64_t total_bytes = 0;
  std::map<std::string, uint64_t> bytes_by_dtype;
  int shards = 0;
  bool indexed = false;
  std::vector<std::string> aux_files;
  std::vector<std::string> problems;  // structural: exit 4
  // The problems where config.json and the tensors disagree (all but naming and norm-convention ones, which
  // convert has options for): a pass refuses a source with any (RequireConfigAgreesWithTensors).
  std::vector<std::string> config_problems;
  std::vector<std::string> warnings;
  std::string verdict;
  std::string fix;
  ExitCode exit_code = ExitCode::kOk;
};

Report InspectCheckpoint(const Checkpoint& ckpt);

// Exit 4 naming config.json, the first disagreement and how many there are, when `r` has config problems:
// what convert, quantize and dequantize check before planning, so no output keeps a config that
// contradicts its tensors.
Status RequireConfigAgreesWithTensors(const Report& r, const std::string& dir);

// The expert layout of one block's tensors (role list).
ExpertLayout DetectExpertLayout(const std::vector<TensorRole>& roles, bool moe_config);

}  // namespace forge::inspect
