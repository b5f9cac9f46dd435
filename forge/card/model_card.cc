#include "forge/card/model_card.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "forge/base/fs_util.h"
#include "forge/ckpt/tensor_names.h"
#include "verify/manifest.h"

namespace forge::card {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool LooksLikeRepoId(const std::string& s) {
  static const std::regex id(R"(^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$)");
  return std::regex_match(s, id) && s.find("--") == std::string::npos && s.find("..") == std::string::npos;
}

// A YAML double-quoted scalar: JSON's string escapes are valid YAML.
std::string Quoted(const std::string& s) { return json(s).dump(); }

std::string Trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string Unquote(std::string s) {
  s = Trim(s);
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
    s = s.substr(1, s.size() - 2);
  return s;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    out.push_back(l.empty() || l.back() != '\r' ? l : l.substr(0, l.size() - 1));
  return out;
}

const json& TextConfig(const json& c) {
  return c.contains("text_config") && c["text_config"].is_object() ? c["text_config"] : c;
}

std::string Bytes(uint64_t n) {
  if (n >= (1ull << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(n) / (1ull << 30));
  if (n >= (1ull << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1ull << 20));
  return fmt::format("{} bytes", n);
}

std::string SpecText(const json& q) {
  const std::string mode = q.value("mode", "affine");
  return fmt::format("{} {}-bit, group {}", mode, q.value("bits", 0), q.value("group_size", 0));
}

// The quantization block: its top level and the per-module entries grouped by parameters.
std::string QuantizationSection(const json& config) {
  std::string s = "## Quantization\n\n";
  const json* q = config.contains("quantization") && config["quantization"].is_object()
                      ? &config["quantization"]
                      : nullptr;
  if (!q) return s + "None: every weight is stored as a float.\n\n";
  s += fmt::format("Top level: {} (`quantization` in config.json).\n\n", SpecText(*q));
  std::map<std::string, std::vector<std::string>> by_spec;
  size_t overrides = 0;
  for (auto it = q->begin(); it != q->end(); ++it) {
    if (!it->is_object() && !it->is_boolean()) continue;
    by_spec[it->is_boolean() ? (it->get<bool>() ? "quantized like the top level" : "kept float")
                             : SpecText(*it)]
        .push_back(it.key());
    ++overrides;
  }
  if (!overrides) return s + "No per-module overrides.\n\n";
  s += fmt::format("Per-module overrides: {}.\n\n| parameters | modules | count |\n|---|---|---|\n",
                   overrides);
  for (const auto& [spec, modules] : by_spec) {
    std::string names;
    for (size_t i = 0; i < modules.size() && i < 6; ++i) names += (i ? ", " : "") + ("`" + modules[i] + "`");
    if (modules.size() > 6) names += fmt::format(", ... {} more", modules.size() - 6);
    s += fmt::format("| {} | {} | {} |\n", spec, names, modules.size());
  }
  return s + "\n";
}

std::string Cell(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return o;
}

}  // namespace

std::string RepoIdOf(const Checkpoint& c) {
  // .../models--ORG--NAME/snapshots/REV: the hub cache's own naming.
  std::vector<std::string> parts;
  for (const auto& p : fs::absolute(c.dir()).lexically_normal()) parts.push_back(p.string());
  while (!parts.empty() && parts.back().empty()) parts.pop_back();
  if (parts.size() >= 3 && parts[parts.size() - 2] == "snapshots" &&
      parts[parts.size() - 3].rfind("models--", 0) == 0) {
    std::string name = parts[parts.size() - 3].substr(8);
    const size_t sep = name.find("--");
    if (sep != std::string::npos) {
      name = name.substr(0, sep) + "/" + name.substr(sep + 2);
      if (LooksLikeRepoId(name)) return name;
    }
  }
  if (c.config() && c.config()->raw.is_object()) {
    const json& raw = c.config()->raw;
    const std::string n = raw.contains("_name_or_path") && raw["_name_or_path"].is_string()
                              ? raw["_name_or_path"].get<std::string>()
                              : "";
    if (LooksLikeRepoId(n)) return n;
  }
  return "";
}

SourceCard ParseSourceCard(const std::string& text) {
  SourceCard c;
  const std::vector<std::string> lines = Lines(text);
  size_t end = 0;
  if (!lines.empty() && Trim(lines[0]) == "---") {
    for (size_t i = 1; i < lines.size(); ++i) {
      if (Trim(lines[i]) == "---") {
        end = i;
        break;
      }
    }
  }
  for (size_t i = 1; i < end; ++i) c.front_matter += lines[i] + "\n";
  for (size_t i = end ? end + 1 : 0; i < lines.size(); ++i) c.body += lines[i] + "\n";
  return c;
}

std::string SourceCard::Scalar(const std::string& key) const {
  for (const auto& l : Lines(front_matter)) {
    if (l.rfind(key + ":", 0) == 0) return Unquote(l.substr(key.size() + 1));
  }
  return "";
}

std::vector<std::string> SourceCard::List(const std::string& key) const {
  std::vector<std::string> out;
  const std::vector<std::string> lines = Lines(front_matter);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(key + ":", 0) != 0) continue;
    std::string rest = Trim(lines[i].substr(key.size() + 1));
    if (!rest.empty() && rest.front() == '[' && rest.back() == ']') {
      std::istringstream items(rest.substr(1, rest.size() - 2));
      for (std::string item; std::getline(items, item, ',');) {
        if (!Unquote(item).empty()) out.push_back(Unquote(item));
      }
    } else if (!rest.empty()) {
      out.push_back(Unquote(rest));
    } else {
      for (size_t j = i + 1; j < lines.size(); ++j) {
        const std::string t = Trim(lines[j]);
        if (t.rfind("- ", 0) != 0) break;
        out.push_back(Unquote(t.substr(2)));
      }
    }
    break;
  }
  return out;
}

std::string RenderVerification(const json& record, const std::string& dir_name) {
  std::string s = std::string(kVerificationBegin) + "\n## Verification\n\n";
  const json* runs = record.is_object() && record.contains("identity") && record["identity"].is_object()
                         ? &record["identity"]
                         : nullptr;
  if (!runs || runs->empty()) {
    return s + fmt::format(
                   "Not verified by forge yet: `forge verify --identity --model {} --record` replays greedy "
                   "decoding "
                   "with and without the MTP head on forge's CPU reference decoder and records the result "
                   "here (and in forge-verify.json).\n{}\n",
                   dir_name, kVerificationEnd);
  }
  s += "`forge verify --identity --record` on forge's CPU reference decoder: greedy decoding with MTP "
       "speculative "
       "decoding against plain greedy decoding, the same prompts (forge-verify.json holds every number).\n\n"
       "| depth | output identical | acceptance | mean accepted length | acceptance per draft position | "
       "prompts | "
       "new tokens per prompt | MTP hidden |\n|---|---|---|---|---|---|---|---|\n";
  for (auto it = runs->begin(); it != runs->end(); ++it) {
    const json& r = *it;
    std::string per;
    for (const auto& p : r.value("per_position", json::array())) {
      per += (per.empty() ? "" : ", ") + fmt::format("{:.1f} %", 100.0 * p.value("rate", 0.0));
    }
    s += fmt::format("| {} | {} | {:.1f} % | {:.2f} | {} | {} | {} | {} |\n", r.value("depth", 0),
                     r.value("identical", false) ? "yes" : "**NO**", 100.0 * r.value("acceptance", 0.0),
                     r.value("mean_accepted_length", 0.0), per, r.value("prompts", json::array()).size(),
                     r.value("max_tokens", 0), r.value("mtp_hidden", ""));
  }
  const json& last = runs->rbegin().value();
  s += "\nPrompts of the last run:\n\n";
  int i = 0;
  for (const auto& p : last.value("prompts", json::array())) {
    std::string text = p.value("text", "");
    if (text.size() > 80) text = text.substr(0, 77) + "...";
    s += fmt::format("{}. {} tokens{}\n", ++i, p.value("tokens", 0),
                     text.empty() ? "" : ": `" + Cell(std::regex_replace(text, std::regex("`"), "'")) + "`");
  }
  s += fmt::format("\nRecorded by forge {} against forge-manifest.json sha1 `{}`.\n",
                   last.value("forge_version", ""), last.value("manifest_sha1", ""));
  return s + kVerificationEnd + "\n";
}

Result<std::string> RenderCard(const CardFacts& f, const std::string& dir, const std::string& src_card,
                               const json& verify_record) {
  FORGE_ASSIGN_OR_RETURN(auto out, Checkpoint::Open(dir));
  const json config = out->config() ? out->config()->raw : json::object();
  json manifest = json::object();
  const std::string mpath = (fs::path(dir) / verify::kManifestName).string();
  if (fs::exists(mpath)) {
    FORGE_ASSIGN_OR_RETURN(std::string text, ReadTextFile(mpath));
    manifest = json::parse(text, nullptr, false);
  }
  const SourceCard src = ParseSourceCard(src_card);

  size_t head_tensors = 0, vision_tensors = 0;
  uint64_t head_bytes = 0, tensor_bytes = 0;
  for (const auto& [name, ref] : out->tensors()) {
    const ModelPart part = SplitTensorName(name).part;
    tensor_bytes += ref.info->nbytes();
    if (part == ModelPart::kMtp) {
      ++head_tensors;
      head_bytes += ref.info->nbytes();
    }
    vision_tensors += part == ModelPart::kVision;
  }
  // The layout the command wrote, else what the output shows (an MTPLX sidecar, MLX names, a vision tower).
  std::string layout = f.layout;
  if (layout.empty()) {
    bool mlx_names = false;
    for (const auto& [name, ref] : out->tensors()) mlx_names |= StartsWith(name, "language_model.");
    layout = !out->sidecar().empty() ? "mtplx" : !mlx_names ? "hf" : vision_tensors ? "omlx" : "mlx-lm";
  }
  const bool mlx = layout != "hf", quantized = config.contains("quantization");
  const int mtp_layers = TextConfig(config).value("mtp_num_hidden_layers", 0);

  // Front matter.
  std::vector<std::string> base_models;
  for (const auto& l : f.lineage) {
    if (!l.repo_id.empty()) base_models.push_back(l.repo_id);
  }
  const bool src_known = !f.lineage.empty() && !f.lineage.front().repo_id.empty();
  if (!src_known) {
    for (const auto& b : src.List("base_model"))
      base_models.insert(base_models.begin(), b);  // SRC's own lineage
  }
  std::string s = "---\n";
  if (!base_models.empty()) {
    s += "base_model:\n";
    for (const auto& b : base_models) s += "- " + Quoted(b) + "\n";
    if (f.command == "quantize" && src_known) s += "base_model_relation: quantized\n";
  }
  s += fmt::format("library_name: {}\n", mlx ? "mlx" : "transformers");
  if (!src.Scalar("license").empty()) s += "license: " + Quoted(src.Scalar("license")) + "\n";
  s += fmt::format("pipeline_tag: {}\n", vision_tensors ? "image-text-to-text" : "text-generation");
  s += "tags:\n";
  std::vector<std::string> tags;
  if (mlx) tags.push_back("mlx");
  if (head_tensors) tags.push_back("mtp");
  if (quantized) tags.push_back("quantized");
  if (layout == "mtplx") tags.push_back("mtplx");
  tags.push_back("forge");
  for (const json* c :
       {&config, &TextConfig(config)}) {  // the top-level model type (qwen3_5), else the text one
    if (c->contains("model_type") && (*c)["model_type"].is_string()) {
      tags.push_back((*c)["model_type"].get<std::string>());
      break;
    }
  }
  for (const auto& t : tags) s += "- " + Quoted(t) + "\n";
  s += "---\n\n";

  // Body.
  const std::string out_name = fs::path(f.out_dir).lexically_normal().filename().string();
  s += fmt::format("# {}\n\n", out_name.empty() ? "forge " + f.command + " output" : out_name);
  s += fmt::format(
      "{} checkpoint in the `{}` layout (docs/LAYOUTS.md of forge), {}, written by `forge {}` {}.\n\n",
      mlx ? "MLX" : "Hugging Face safetensors", layout,
      head_tensors ? fmt::format("with its MTP head ({} layer{})", mtp_layers, mtp_layers == 1 ? "" : "s")
                   : "without an MTP head",
      f.command, f.forge_version);

  s += "## Lineage\n\n| role | model | directory given |\n|---|---|---|\n";
  for (const auto& l : f.lineage) {
    s +=
        fmt::format("| {} | {} | `{}` |\n", l.role,
                    l.repo_id.empty() ? "not a known Hugging Face repo" : "`" + l.repo_id + "`", Cell(l.dir));
  }
  if (!src_known && !src.List("base_model").empty())
    s += "\nThe source's own card names its base model(s), listed above as `base_model`.\n";

  s += "\n## What was done\n\n```\n" + f.command_line + "\n```\n\n";
  for (const auto& d : f.done) s += "- " + d + "\n";
  s += "\n" + QuantizationSection(config);

  s += "## MTP head\n\n";
  if (!head_tensors) {
    s += "None in this checkpoint: runtimes cannot draft with MTP (`forge graft` transplants one).\n\n";
  } else {
    s += fmt::format("{} tensors, {} ({} MTP layer{}); policy: {}; layout `{}`{}.\n\n", head_tensors,
                     Bytes(head_bytes), mtp_layers, mtp_layers == 1 ? "" : "s",
                     f.head_policy.empty() ? "carried as it was" : f.head_policy, layout,
                     layout == "mtplx"
                         ? " (the head in `mtp.safetensors`, norms zero-centred, declared "
                           "`mtplx_mtp_norm_encoding: \"delta\"`; `mtplx_runtime.json` beside it)"
                         : "");
  }

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - f.started).count();
  uint64_t weight_bytes = 0;
  std::vector<std::pair<std::string, json>> weights;
  if (manifest.is_object() && manifest.contains("files")) {
    for (auto it = manifest["files"].begin(); it != manifest["files"].end(); ++it) {
      if (!EndsWith(it.key(), ".safetensors")) continue;
      weights.emplace_back(it.key(), *it);
      weight_bytes += it->value("bytes", uint64_t{0});
    }
  }
  s += "## Build stats\n\n| tensors | tensor bytes | weight files | weight file bytes | seconds | threads "
       "|\n|---|---|---|---|---|---|\n";
  s += fmt::format("| {} | {} | {} | {} | {:.1f} | {} |\n\n", out->tensors().size(), tensor_bytes,
                   out->shards().size(), weight_bytes, seconds,
                   f.threads ? std::to_string(f.threads) : "all cores");

  s += "## Weights\n\nsha1 of each weight file, from `forge-manifest.json` (`forge verify --manifest DIR` "
       "re-checks them "
       "and every tensor):\n\n| file | bytes | sha1 |\n|---|---|---|\n";
  for (const auto& [file, e] : weights) {
    s += fmt::format("| `{}` | {} | {} |\n", file, e.value("bytes", uint64_t{0}),
                     e.contains("sha1") ? "`" + e["sha1"].get<std::string>() + "`"
                                        : "not hashed (hard-linked; `forge manifest DIR` hashes it)");
  }
  s += "\n" + RenderVerification(verify_record, f.out_dir);
  if (!Trim(src.body).empty()) {
    // A forge card below keeps its text; its markers go, so `--record` only ever rewrites this card's
    // section.
    std::string body;
    for (const auto& l : Lines(src.body)) {
      if (Trim(l) != kVerificationBegin && Trim(l) != kVerificationEnd) body += l + "\n";
    }
    s += "\n---\n\n## Card of the source model\n\nThe source's README.md as it was (its front matter left "
         "out: its "
         "license and base_model are carried into the front matter above):\n\n" +
         body;
  }
  return s;
}

Status WriteCard(const CardFacts& facts, const std::string& dir, const std::string& src_dir) {
  std::string src_card;
  const fs::path src_readme = fs::path(src_dir) / verify::kCardName;
  std::error_code ec;
  if (!src_dir.empty() && fs::is_regular_file(src_readme, ec)) {
    FORGE_ASSIGN_OR_RETURN(src_card, ReadTextFile(src_readme.string()));
  }
  FORGE_ASSIGN_OR_RETURN(std::string card, RenderCard(facts, dir, src_card, nullptr));
  return WriteTextFile((fs::path(dir) / verify::kCardName).string(), card);
}

}  // namespace forge::card
