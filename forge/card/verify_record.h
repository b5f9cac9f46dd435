// forge-verify.json: what `forge verify --identity --record DIR` measured, kept beside the weights, one entry
// per depth (a later run at the same depth replaces it), each bound to the sha1 of the forge-manifest.json
// it ran against. Recording also rewrites the verification section of DIR's forge model card (between its
// markers); a README.md that is not a forge card is left alone.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "forge/base/status.h"

namespace forge::card {

struct RecordResult {
  std::string record_path;
  bool card_updated = false;
};

// `identity`: verify --identity's JSON (verify::spec::IdentityJson). Written atomically.
Result<RecordResult> RecordIdentity(const std::string& dir, const nlohmann::json& identity,
                                    const std::string& forge_version);

// forge-verify.json's content, null when DIR has none.
Result<nlohmann::json> ReadVerifyRecord(const std::string& dir);

}  // namespace forge::card
