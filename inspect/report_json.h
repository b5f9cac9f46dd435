// Machine-readable renderings of inspect reports (`--json`).
#pragma once

#include <nlohmann/json.hpp>

#include "inspect/classify.h"
#include "inspect/tensor_table.h"

namespace forge::inspect {

nlohmann::json ReportToJson(const Report& r);
nlohmann::json TensorTableToJson(const std::vector<TensorRow>& rows);

}  // namespace forge::inspect
