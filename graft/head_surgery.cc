#include "graft/head_surgery.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "forge/base/fs_util.h"
#include "forge/ckpt/tensor_names.h"
#include "inspect/classify.h"
#include "verify/manifest.h"
#include "verify/trunk_check.h"

namespace forge::graft {
namespace fs = std::filesystem;

namespace {

bool IsMtp(const std::string& name) { return SplitTensorName(name).part == ModelPart::kMtp; }

nlohmann::json& TextConfig(nlohmann::json& cfg, bool nested) { return nested ? cfg["text_config"] : cfg; }

// A carried file's bytes, as the writer copies and proves them, hashed for the manifest on the way.
class ManifestSink : public plan::CarriedBytesSink {
 public:
  explicit ManifestSink(std::string src_path) : src_path_(std::move(src_path)) {}
  void Update(const uint8_t* data, uint64_t n) override { digest_.Update(data, n); }
  const std::string& src_path() const { return src_path_; }
  verify::StreamedFileDigest& digest() { return digest_; }

 private:
  std::string src_path_;
  verify::StreamedFileDigest digest_;
};

}  // namespace

Result<SurgeryPlan> BuildStripPlan(const Checkpoint& src) {
  if (!src.config()) return Status::Invalid("no config.json", src.dir());
  SurgeryPlan s;
  FORGE_ASSIGN_OR_RETURN(s.out, KeepTrunk(src, IsMtp));
  if (s.out.dropped.empty()) s.notes.push_back("no MTP tensors: only the config is made consistent");
  if (src.has_index()) s.out.layout.index = IndexFor(s.out, src);
  s.config = src.config()->raw;
  TextConfig(s.config, src.config()->nested)["mtp_num_hidden_layers"] = 0;
  s.config.erase("mlx_lm_extra_tensors");
  for (const char* key : {"quantization", "quantization_config"}) {
    if (!s.config.contains(key) || !s.config[key].is_object()) continue;
    for (auto it = s.config[key].begin(); it != s.config[key].end();) {
      it = IsMtp(it.key()) ? s.config[key].erase(it) : std::next(it);
    }
  }
  s.notes.push_back(fmt::format("{} MTP tensors dropped, mtp_num_hidden_layers = 0", s.out.dropped.size()));
  return s;
}

Result<SurgeryPlan> BuildFixConfigPlan(const Checkpoint& src) {
  if (!src.config()) return Status::Invalid("no config.json", src.dir());
  const inspect::Report r = inspect::InspectCheckpoint(src);
  SurgeryPlan s;
  int layers = 0;
  switch (r.mtp.status) {
    case inspect::MtpStatus::kDeclaredButMissing:
      layers = 0;
      break;
    case inspect::MtpStatus::kPresentButUndeclared:
      layers = std::max(1, r.mtp.layers_present);
      break;
    case inspect::MtpStatus::kIncomplete:
      return Status::Error(ExitCode::kMtpMismatch,
                           "the MTP head is incomplete: graft a complete one (forge graft) or drop it "
                           "(forge strip-mtp); a config change cannot fix it",
                           src.dir());
    default:
      return Status::Error(
          ExitCode::kNothingToDo,
          fmt::format("config already consistent (MTP {})", inspect::MtpStatusName(r.mtp.status)), src.dir());
  }
  FORGE_ASSIGN_OR_RETURN(s.out, KeepTrunk(src, [](const std::string&) { return false; }));
  if (src.has_index()) s.out.layout.index = IndexFor(s.out, src);
  s.config = src.config()->raw;
  TextConfig(s.config, src.config()->nested)["mtp_num_hidden_layers"] = layers;
  s.notes.push_back(fmt::format("mtp_num_hidden_layers {} -> {} ({})", r.mtp.declared_layers, layers,
                                inspect::MtpStatusName(r.mtp.status)));
  return s;
}

Result<nlohmann::json> WriteSurgery(const Checkpoint& src, const TrunkLayout& out,
                                    const nlohmann::json& config, const std::string& out_dir,
                                    const SurgeryWrite& sw) {
  plan::WriteOptions w = plan::DerivedFrom(src);
  for (const Checkpoint* other : sw.also_reads) plan::AddSource(*other, &w.sources);
  w.threads = sw.threads;
  w.force = sw.force;
  w.progress = sw.progress;
  w.config = config;
  std::erase_if(w.copy_files, [&](const auto& f) { return sw.replaced_files.count(f.second) > 0; });
  nlohmann::json checks;
  // Copied trunk files are proven equal to SRC's and hashed while they are copied: one pass over them.
  std::map<std::string, std::unique_ptr<ManifestSink>> sinks;  // output file name -> its sink
  w.carried_sink = [&](const plan::CarriedFile& c) -> plan::CarriedBytesSink* {
    auto& sink = sinks[c.name];
    sink = std::make_unique<ManifestSink>(c.source_path);
    return sink.get();
  };
  w.before_commit = [&](const std::string& staged) -> Status {
    for (const auto& [file, text] : sw.replaced_files) {
      if (text) FORGE_RETURN_IF_ERROR(WriteTextFile((fs::path(staged) / file).string(), *text));
    }
    std::set<verify::VerifiedCopy> copies;
    std::map<std::string, verify::StreamedCopy> streamed;
    for (auto& [file, sink] : sinks) {
      sink->digest().Finish();
      copies.insert({file, sink->src_path()});
      streamed[file] = {&sink->digest(), sink->src_path()};
    }
    if (sw.check_trunk) {
      FORGE_ASSIGN_OR_RETURN(auto staged_ckpt, Checkpoint::Open(staged));
      verify::TrunkCheck tc = verify::CheckTrunk(src, *staged_ckpt, copies, out.dropped);
      checks["trunk_tensors_identical"] = tc.compared;
      checks["trunk_tensors_linked"] = tc.linked;
      checks["trunk_tensors_compared_while_copying"] = tc.copied;
      checks["trunk_bytes_compared"] = tc.bytes_compared;
      if (!tc.ok()) {
        return Status::Error(
            ExitCode::kVerifyFailed,
            fmt::format("trunk check failed on the staged output: {}", tc.mismatches.front()));
      }
    }
    std::vector<std::string> link_sources;
    if (sw.link) link_sources.push_back(src.dir());
    FORGE_ASSIGN_OR_RETURN(nlohmann::json manifest,
                           verify::BuildManifest(staged, link_sources, streamed, sw.threads));
    checks["manifest_files"] = manifest["files"].size();
    int unhashed = 0;
    for (const auto& f : manifest["files"]) unhashed += f.contains("crc32") ? 0 : 1;
    checks["manifest_files_size_only"] = unhashed;
    FORGE_RETURN_IF_ERROR(WriteTextFile((fs::path(staged) / verify::kManifestName).string(), manifest.dump(2) + "\n"));
    return sw.after_manifest ? sw.after_manifest(staged) : Status();
  };
  plan::LinkReport links;
  FORGE_ASSIGN_OR_RETURN(plan::WriteReport rep,
                         plan::WriteLayout(out.plan, out.layout, out_dir, w, sw.link, &links));
  uint64_t written = links.copied_bytes;
  for (const auto& s : out.layout.new_shards) written += s.file_size();
  return nlohmann::json{{"out", rep.out_dir},
                        {"seconds", rep.seconds},
                        {"file_bytes", rep.file_bytes},
                        {"bytes_written", written},
                        {"carried_files", out.layout.carried.size()},
                        {"linked_files", links.linked},
                        {"copied_files", links.copied},
                        {"carried_bytes", links.carried_bytes},
                        {"checks", checks}};
}

}  // namespace forge::graft
