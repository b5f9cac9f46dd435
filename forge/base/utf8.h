// Strict UTF-8 validation: what JSON (headers, indexes, manifests, --json output) can carry.
#pragma once

#include <string>
#include <string_view>

namespace forge {

bool IsValidUtf8(std::string_view text);

// `text` with every byte outside printable ASCII written as \xHH: a name that is not UTF-8, shown in a
// one-line message.
std::string EscapeBytes(std::string_view text);

}  // namespace forge
