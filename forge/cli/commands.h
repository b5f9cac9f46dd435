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
void SetupGraft(CLI::App& app, Action* run);     // graft, strip-mtp, fix-config
void SetupVerify(CLI::App& app, Action* run);    // manifest, verify

}  // namespace forge::cli
