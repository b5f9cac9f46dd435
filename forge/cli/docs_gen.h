// The man page and shell completions, generated from the command tree itself (every command's --help text,
// every option's names and choices) at build time: `forge --print-man`, `forge --print-completion
// bash|zsh` (hidden; cmake/install.cmake runs them), so they never drift from the binary.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace forge::cli {

std::string ManPage(CLI::App& app, const std::string& version);
std::string BashCompletion(CLI::App& app);
std::string ZshCompletion(CLI::App& app);

}  // namespace forge::cli
