// Human-readable renderings of inspect reports.
#pragma once

#include <string>

#include "inspect/classify.h"
#include "inspect/tensor_table.h"

namespace forge::inspect {

std::string ReportToText(const Report& r);
std::string TensorTableToText(const std::vector<TensorRow>& rows);

}  // namespace forge::inspect
