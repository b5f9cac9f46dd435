#include "inspect/tensor_table.h"

#include <filesystem>

#include "forge/ckpt/tensor_names.h"
#include "inspect/quant_report.h"

namespace forge::inspect {

std::vector<TensorRow> BuildTensorTable(const Checkpoint& ckpt) {
  QuantReport quant = BuildQuantReport(ckpt);
  std::vector<TensorRow> rows;
  for (const auto& [name, ref] : ckpt.tensors()) {
    TensorRow row;
    row.name = name;
    row.dtype = std::string(DTypeName(ref.info->dtype));
    row.shape = ref.info->shape;
    row.bytes = ref.info->nbytes();
    row.shard = std::filesystem::path(ref.file->path()).filename().string();
    if (EndsWith(name, ".scales")) row.quant = "scales";
    else if (EndsWith(name, ".biases") && ckpt.tensors().count(name.substr(0, name.size() - 7) + ".scales")) row.quant = "biases";
    else if (EndsWith(name, ".weight")) {
      if (auto spec = quant.SpecOf(name.substr(0, name.size() - 7))) row.quant = QuantSpecString(*spec);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace forge::inspect
