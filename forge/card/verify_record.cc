#include "forge/card/verify_record.h"

#include <filesystem>

#include "forge/base/fs_util.h"
#include "forge/base/json_text.h"
#include "forge/card/model_card.h"
#include "verify/manifest.h"

namespace forge::card {
namespace fs = std::filesystem;
using json = nlohmann::json;

Result<json> ReadVerifyRecord(const std::string& dir) {
  const std::string path = (fs::path(dir) / verify::kVerifyRecordName).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return json(nullptr);
  FORGE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  FORGE_ASSIGN_OR_RETURN(json j, ParseJsonFileText(text, path, "verify record"));
  if (!j.is_object() || !j.contains("identity") || !j["identity"].is_object()) {
    return Status::Invalid("not a forge verify record (no 'identity' object)", path);
  }
  return j;
}

Result<RecordResult> RecordIdentity(const std::string& dir, const json& identity,
                                    const std::string& forge_version) {
  RecordResult r;
  r.record_path = (fs::path(dir) / verify::kVerifyRecordName).string();
  FORGE_ASSIGN_OR_RETURN(json record, ReadVerifyRecord(dir));
  if (record.is_null()) record = {{"format", "forge-verify/1"}, {"identity", json::object()}};

  std::string manifest_sha1;
  const std::string mpath = (fs::path(dir) / verify::kManifestName).string();
  std::error_code ec;
  if (fs::exists(mpath, ec)) {
    FORGE_ASSIGN_OR_RETURN(std::string m, ReadTextFile(mpath));
    manifest_sha1 = verify::Sha1Hex(reinterpret_cast<const uint8_t*>(m.data()), m.size());
  }
  json entry = {{"identical", identity.value("identical", false)},
                {"depth", identity.value("depth", 0)},
                {"acceptance", identity.value("acceptance", 0.0)},
                {"mean_accepted_length", identity.value("mean_accepted_length", 0.0)},
                {"per_position", identity.value("per_position", json::array())},
                {"drafted", identity.value("drafted", 0)},
                {"accepted", identity.value("accepted", 0)},
                {"max_tokens", identity.value("max_tokens", 0)},
                {"mtp_hidden", identity.value("mtp_hidden", "")},
                {"forge_version", forge_version},
                {"manifest_sha1", manifest_sha1},
                {"prompts", json::array()}};
  for (const auto& p : identity.value("prompts", json::array())) {
    json one = {{"tokens", p.value("prompt", json::array()).size()},
                {"prompt", p.value("prompt", json::array())},
                {"generated", p.value("vanilla", json::array()).size()},
                {"identical", p.value("identical", false)}};
    if (p.contains("prompt_text")) one["text"] = p["prompt_text"];
    entry["prompts"].push_back(one);
  }
  record["identity"][std::to_string(entry["depth"].get<int>())] = entry;
  FORGE_RETURN_IF_ERROR(WriteFileAtomically(r.record_path, record.dump(2) + "\n"));

  // The card's section, when the card is forge's (both markers present).
  const std::string card_path = (fs::path(dir) / verify::kCardName).string();
  if (!fs::exists(card_path, ec)) return r;
  FORGE_ASSIGN_OR_RETURN(std::string card, ReadTextFile(card_path));
  const size_t a = card.find(kVerificationBegin), b = card.find(kVerificationEnd);
  if (a == std::string::npos || b == std::string::npos || b < a) return r;
  size_t end = b + std::string(kVerificationEnd).size();
  if (end < card.size() && card[end] == '\n') ++end;
  card = card.substr(0, a) + RenderVerification(record, dir) + card.substr(end);
  FORGE_RETURN_IF_ERROR(WriteFileAtomically(card_path, card));
  r.card_updated = true;
  return r;
}

}  // namespace forge::card
