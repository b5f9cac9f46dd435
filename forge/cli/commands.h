// Each command registers itself on the root app and sets `run` when selected.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace forge::cli {

using Action = std::function<int()>;

void SetupInspect(CLI::App& app, Action* run);
void SetupReshard(CLI::App& app, Action* run);
void SetupConvert(CLI::App& app, Action* run);
void SetupQuantize(CLI::App& app, Action* run);  // quantize and dequantize

}  // namespace forge::cli
