// `forge quantize` and `forge dequantize` (graft/quantize_recipe.h composes the passes).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "forge/base/fs_util.h"
#include "forge/base/thread_pool.h"
#include "forge/cli/card_output.h"
#include "forge/cli/commands.h"
#include "forge/cli/output.h"
#include "forge/plan/plan_diff.h"
#include "forge/plan/writer.h"
#include "graft/quantize_recipe.h"

namespace forge::cli {
namespace {

constexpr uint64_t kMemoryBudget = 1ull << 30;

struct QuantizeCliOptions {
  std::string src, out, mode = "affine", mtp_policy = "skip-fc", match = "mlx-gpu", dtype, report,
                        max_shard_size = "5GB";
  int bits = 0, group_size = 0;
  std::vector<std::string> skips, overrides;
  std::vector<std::pair<bool, std::string>> rules_in_order;  // (is_override, text)
  unsigned threads = 0;
  bool dry_run = false, force = false, tensor_level = false, allow_overflow = false;
  CommonFlags flags;
  CardFlag card;
};

Result<graft::QuantizeOptions> ToOptions(const QuantizeCliOptions& c) {
  graft::QuantizeOptions o;
  auto mode = quant::ParseQuantMode(c.mode);
  if (!mode) return Status::Error(ExitCode::kUsage, "--mode must be affine, mxfp4, mxfp8 or nvfp4");
  o.policy.top = quant::DefaultParams(*mode);
  if (c.bits) o.policy.top.bits = c.bits;
  if (c.group_size) o.policy.top.group_size = c.group_size;
  FORGE_RETURN_IF_ERROR(quant::ValidateParams(o.policy.top));
  FORGE_RETURN_IF_ERROR(quant::ParseMtpPolicy(c.mtp_policy, &o.policy));
  for (const auto& [is_override, text] : c.rules_in_order) {
    if (!is_override) {
      o.policy.rules.push_back({text, std::nullopt});
      continue;
    }
    const size_t eq = text.rfind('=');
    if (eq == std::string::npos || eq == 0) return Status::Error(ExitCode::kUsage, "--override takes GLOB=MODE:BITS:GROUP or GLOB=keep");
    FORGE_ASSIGN_OR_RETURN(auto p, quant::ParseRuleSpec(text.substr(eq + 1)));
    o.policy.rules.push_back({text.substr(0, eq), p});
  }
  o.rules = c.match == "mlx-cpu" ? quant::Rules::kMlxCpu : quant::Rules::kMlxGpu;
  o.dtype = ParseFloatDType(c.dtype);
  o.allow_overflow = c.allow_overflow;
  o.measure_fidelity = c.flags.json || !c.report.empty();
  o.tensor_level = c.tensor_level;
  return o;
}

nlohmann::json FidelityJson(const graft::QuantizeRecipe& r, uint64_t output_tensor_bytes) {
  nlohmann::json tensors = nlohmann::json::object();
  uint64_t elements = 0, qbytes = 0;
  double worst_cos = 1.0, weighted_cos = 0, max_err = 0, weighted_mean_err = 0;
  for (const auto& [name, f] : r.fidelity->Snapshot()) {
    tensors[name] = {{"params", f.params}, {"cosine", f.cosine}, {"max_abs_error", f.max_abs_error},
                     {"mean_abs_error", f.mean_abs_error}, {"elements", f.elements}};
    elements += f.elements;
    qbytes += f.quantized_bytes;
    worst_cos = std::min(worst_cos, f.cosine);
    weighted_cos += f.cosine * static_cast<double>(f.elements);
    weighted_mean_err += f.mean_abs_error * static_cast<double>(f.elements);
    max_err = std::max(max_err, f.max_abs_error);
  }
  const double n = static_cast<double>(elements);
  return {{"tensors", tensors},
          {"totals",
           {{"quantized_tensors", r.fidelity->Snapshot().size()}, {"quantized_weights", elements},
            {"bits_per_weight_quantized", elements ? 8.0 * static_cast<double>(qbytes) / n : 0.0},
            {"cosine_mean", elements ? weighted_cos / n : 1.0}, {"cosine_min", worst_cos},
            {"max_abs_error", max_err}, {"mean_abs_error", elements ? weighted_mean_err / n : 0.0},
            {"output_tensor_bytes", output_tensor_bytes}}}};
}

// --report FILE follows the output's rules: never a source (nor where a source file resolves), never
// replaced without --force, and written (to a temporary sibling) before the output is committed, so a
// report that cannot be written fails the run with nothing committed; renamed into place after the output.
class ReportFile {
 public:
  static Result<ReportFile> Prepare(const std::string& path, const Sources& sources, bool force) {
    ReportFile f;
    if (path.empty()) return f;
    FORGE_RETURN_IF_ERROR(CheckAvoidsSources(path, sources, "--report file"));
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::symlink_status(path, ec)) && !force) {
      return Status::Invalid("--report file already exists (use --force to replace it)", path);
    }
    f.path_ = path;
    return f;
  }
  // Into the staging directory when the report lies inside the output, else beside its final name.
  Status WriteStaged(const std::string& text, const std::string& out_dir, const std::string& staging) {
    if (path_.empty()) return Status();
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path out = fs::weakly_canonical(fs::absolute(out_dir, ec), ec);
    const fs::path target = fs::weakly_canonical(fs::absolute(path_, ec), ec);
    const fs::path rel = target.lexically_relative(out);
    if (!rel.empty() && *rel.begin() != "..") {
      fs::create_directories((fs::path(staging) / rel).parent_path(), ec);
      return WriteTextFile((fs::path(staging) / rel).string(), text);
    }
    temp_ = TempSibling(target.string());
    return WriteTextFile(temp_, text);
  }
  Status Finish() {
    if (temp_.empty()) return Status();
    if (::rename(temp_.c_str(), path_.c_str()) != 0) return Status::Invalid("cannot rename the report into place", path_);
    temp_.clear();
    return Status();
  }
  ~ReportFile() {
    if (!temp_.empty()) (void)::unlink(temp_.c_str());
  }
  ReportFile() = default;
  ReportFile(ReportFile&& o) noexcept : path_(std::move(o.path_)), temp_(std::move(o.temp_)) { o.temp_.clear(); }

 private:
  std::string path_, temp_;
};

int WriteRecipe(const graft::QuantizeRecipe& r, const Checkpoint& ckpt, const std::string& out,
                const std::string& max_shard_size, unsigned threads, bool force, const CommonFlags& flags,
                nlohmann::json* report_out, const std::shared_ptr<card::CardFacts>& card,
                const std::function<Status(const std::string&)>& before_commit = {}) {
  auto max_size = plan::ParseByteSize(max_shard_size);
  if (!max_size.ok()) return ReportError(max_size.status(), flags);
  plan::WriteOptions w = OutputOptions(ckpt, flags, force, threads, *max_size);
  w.memory_budget = kMemoryBudget;
  w.metadata = r.metadata;
  w.config = r.config;
  w.before_commit = before_commit;
  if (card) {
    card->threads = threads;
    for (const auto& n : r.notes) card->done.push_back(n);
    AddManifestAndCard(&w, card, ckpt.dir());
  }
  auto rep = plan::WritePlan(r.plan, out, w);
  if (!rep.ok()) return ReportError(rep.status(), flags);
  *report_out = plan::WriteReportJson(*rep);
  report_out->update({{"input", r.input_kind}, {"notes", r.notes}, {"tensors", r.plan.tensors.size()},
                      {"quantized_modules", r.quantized.size()}, {"exit_code", 0}});
  return 0;
}

int RunQuantize(const QuantizeCliOptions& c) {
  auto opts = ToOptions(c);
  if (!opts.ok()) return ReportError(opts.status(), c.flags);
  auto ckpt = OpenInput(c.src);
  if (!ckpt.ok()) return ReportError(ckpt.status(), c.flags);
  auto r = graft::BuildQuantizeRecipe(**ckpt, *opts);
  if (!r.ok()) return ReportError(r.status(), c.flags);
  if (c.dry_run) {
    auto max_size = plan::ParseByteSize(c.max_shard_size);
    if (!max_size.ok()) return ReportError(max_size.status(), c.flags);
    auto shards = plan::LayoutShards(r->plan, *max_size, r->metadata);
    if (!shards.ok()) return ReportError(shards.status(), c.flags);
    nlohmann::json j = {{"dry_run", true}, {"input", r->input_kind}, {"notes", r->notes},
                        {"quantization", (*r->config)["quantization"]}, {"output_bytes", r->plan.total_bytes()},
                        {"estimated_peak_memory_bytes", plan::EstimatePeakBytes(r->plan, c.threads ? c.threads : DefaultThreadCount(), kMemoryBudget)},
                        {"exit_code", 0}};
    for (const auto& [m, p] : r->quantized) j["quantized"][m] = quant::ParamsString(p);
    for (const auto& [t, why] : r->kept) j["kept_float"][t] = why;
    for (const auto& s : *shards) j["shards"].push_back({{"file", s.file_name}, {"bytes", s.file_size()}});
    if (c.flags.json) {
      PrintJson(j);
    } else {
      std::printf("quantize %s -> %s (%s input), dry run: nothing written\n", c.src.c_str(), c.out.c_str(), r->input_kind.c_str());
      for (const auto& n : r->notes) std::printf("  note: %s\n", n.c_str());
      std::printf("quantized modules: %zu\n", r->quantized.size());
      for (const auto& [m, p] : r->quantized) std::printf("  %-70s %s\n", m.c_str(), quant::ParamsString(p).c_str());
      std::printf("kept float (matrices): %zu\n", r->kept.size());
      for (const auto& [t, why] : r->kept) std::printf("  %-70s %s\n", t.c_str(), why.c_str());
      std::printf("output: %llu bytes in %zu shard(s); config quantization: %s\n",
                  static_cast<unsigned long long>(r->plan.total_bytes()), shards->size(), (*r->config)["quantization"].dump().c_str());
    }
    return 0;
  }
  Sources sources;
  plan::AddSource(**ckpt, &sources);
  auto report = ReportFile::Prepare(c.report, sources, c.force);
  if (!report.ok()) return ReportError(report.status(), c.flags);
  nlohmann::json j, fid;  // fidelity: complete once every part is written, i.e. before the commit
  std::shared_ptr<card::CardFacts> facts;
  if (!c.card.no_card) {
    facts = NewCardFacts("quantize", **ckpt, c.src, c.out);
    const auto& q = (*r->config)["quantization"];
    facts->done.push_back(fmt::format("quantized {} modules to {} {}-bit, group {} ({} rules, bit-identical to "
                                      "mx.quantize); {} matrices kept float",
                                      r->quantized.size(), q.value("mode", "affine"), q.value("bits", 0),
                                      q.value("group_size", 0), c.match, r->kept.size()));
    facts->head_policy = DescribeMtpPolicy(c.mtp_policy, true);
  }
  int rc = WriteRecipe(*r, **ckpt, c.out, c.max_shard_size, c.threads, c.force, c.flags, &j, facts,
                       [&](const std::string& staging) -> Status {
                         if (!r->fidelity) return Status();
                         fid = FidelityJson(*r, r->plan.total_bytes());
                         if (facts) {
                           const auto& t = fid["totals"];
                           facts->done.push_back(fmt::format(
                               "fidelity measured on every quantized tensor: {:.3f} bits/weight, cosine mean {:.5f} "
                               "(min {:.5f}), mean abs error {:.3g} (max {:.3g})",
                               t.value("bits_per_weight_quantized", 0.0), t.value("cosine_mean", 0.0),
                               t.value("cosine_min", 0.0), t.value("mean_abs_error", 0.0), t.value("max_abs_error", 0.0)));
                         }
                         return report->WriteStaged(fid.dump(2) + "\n", c.out, staging);
                       });
  if (rc != 0) return rc;
  if (Status st = report->Finish(); !st.ok()) return ReportError(st, c.flags);
  if (r->fidelity) {
    j["fidelity"] = fid["totals"];
    if (c.flags.json) j["fidelity_tensors"] = fid["tensors"];
  }
  if (c.flags.json) {
    PrintJson(j);
  } else {
    for (const auto& n : r->notes) std::printf("%s\n", n.c_str());
    const auto& q = (*r->config)["quantization"];
    size_t overrides = 0;
    for (const auto& v : q) overrides += v.is_object();
    std::printf("wrote %s: %zu quantized modules, %s:%d:%d with %zu per-module overrides, %llu bytes in %.2f s\n",
                j["out"].get<std::string>().c_str(), r->quantized.size(), q["mode"].get<std::string>().c_str(),
                q["bits"].get<int>(), q["group_size"].get<int>(), overrides,
                static_cast<unsigned long long>(j["file_bytes"].get<uint64_t>()), j["seconds"].get<double>());
    if (j.contains("fidelity")) {
      const auto& f = j["fidelity"];
      std::printf("fidelity: %.3f bits/weight, cosine mean %.5f (min %.5f), abs error mean %.3g (max %.3g); per tensor in %s\n",
                  f["bits_per_weight_quantized"].get<double>(), f["cosine_mean"].get<double>(), f["cosine_min"].get<double>(),
                  f["mean_abs_error"].get<double>(), f["max_abs_error"].get<double>(), c.report.c_str());
    }
  }
  return 0;
}

struct DequantizeCliOptions {
  std::string src, out, dtype, max_shard_size = "5GB";
  unsigned threads = 0;
  bool force = false, allow_overflow = false;
  CommonFlags flags;
  CardFlag card;
};

int RunDequantize(const DequantizeCliOptions& c) {
  auto ckpt = OpenInput(c.src);
  if (!ckpt.ok()) return ReportError(ckpt.status(), c.flags);
  auto r = graft::BuildDequantizeRecipe(**ckpt, ParseFloatDType(c.dtype), c.allow_overflow);
  if (!r.ok()) return ReportError(r.status(), c.flags);
  nlohmann::json j;
  std::shared_ptr<card::CardFacts> facts;
  if (!c.card.no_card) {
    facts = NewCardFacts("dequantize", **ckpt, c.src, c.out);
    facts->done.push_back("dequantized every quantized module with MLX's arithmetic");
  }
  int rc = WriteRecipe(*r, **ckpt, c.out, c.max_shard_size, c.threads, c.force, c.flags, &j, facts);
  if (rc != 0) return rc;
  if (c.flags.json) PrintJson(j);
  else std::printf("wrote %s: dequantized, %llu bytes in %.2f s\n", j["out"].get<std::string>().c_str(),
                   static_cast<unsigned long long>(j["file_bytes"].get<uint64_t>()), j["seconds"].get<double>());
  return 0;
}

}  // namespace

void SetupQuantize(CLI::App& app, Action* run) {
  auto c = std::make_shared<QuantizeCliOptions>();
  auto* cmd = app.add_subcommand("quantize", "Quantize to MLX affine / mxfp4 / mxfp8 / nvfp4, bit-identical to mx.quantize");
  cmd->add_option("--src", c->src, "HF raw or MLX checkpoint (float or quantized), or any safetensors directory")->required();
  cmd->add_option("--out", c->out, "Output directory (must not exist unless --force)")->required();
  cmd->add_option("--mode", c->mode, "affine (default), mxfp4, mxfp8, nvfp4")->check(CLI::IsMember({"affine", "mxfp4", "mxfp8", "nvfp4"}));
  cmd->add_option("--bits", c->bits, "Bits (affine 2,3,4,5,6,8; default per mode)");
  cmd->add_option("--group-size", c->group_size, "Group size (affine 32,64,128; default per mode)");
  auto* skip = cmd->add_option("--skip", c->skips, "Keep modules matching GLOB float (MLX module paths); repeatable");
  auto* ovr = cmd->add_option("--override", c->overrides, "GLOB=MODE:BITS:GROUP or GLOB=keep; repeatable; the last matching rule wins");
  cmd->add_option("--mtp-policy", c->mtp_policy,
                  "skip-fc (default: mtp.fc float), keep (head float), match (like the trunk), MODE:BITS:GROUP.\n"
                  "WARNING: quantizing the head lowers MTP acceptance; check it with forge verify");
  cmd->add_option("--match", c->match, "Rounding rules: mlx-gpu (default; what a Mac writes) or mlx-cpu (Linux MLX)")
      ->check(CLI::IsMember({"mlx-gpu", "mlx-cpu"}));
  cmd->add_option("--dtype", c->dtype, "Cast float weights first: bf16, f16, f32")->check(CLI::IsMember({"bf16", "f16", "f32"}));
  cmd->add_flag("--allow-overflow", c->allow_overflow,
                "With --dtype: store values beyond the dtype's range as infinities instead of refusing");
  cmd->add_option("--report", c->report, "Write per-tensor fidelity (cosine, max/mean abs error) as JSON");
  cmd->add_option("--max-shard-size", c->max_shard_size, "Largest shard (default 5GB)");
  cmd->add_option("--threads", c->threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(0u, kMaxThreads));
  cmd->add_flag("--tensor-level", c->tensor_level,
                "Quantize every 2-D+ float .weight as a plain tensor set, even where the names are Qwen3.5/3.6's "
                "(no conversion, no model recipe: vision tower, routers and mtp.fc too)");
  cmd->add_flag("--dry-run", c->dry_run, "List what would be quantized and kept, without writing");
  cmd->add_flag("--force", c->force, "Replace an existing output directory");
  c->flags.Add(cmd);
  c->card.Add(cmd);
  cmd->footer(
      "Formats (bits per weight incl. scales):\n"
      "  affine  bits 2-6,8  group 32/64/128  scale+bias in the weight dtype   e.g. 4-bit g64: 4.5 bpw\n"
      "  mxfp4   4 bits      group 32         E8M0 scale byte                  4.25 bpw\n"
      "  mxfp8   8 bits      group 32         E8M0 scale byte                  8.25 bpw\n"
      "  nvfp4   4 bits      group 16         E4M3 scale byte                  4.5 bpw");
  cmd->callback([run, c, cmd, skip, ovr] {
    // --skip and --override interleave: keep their command-line order (the last matching rule wins).
    size_t si = 0, oi = 0;
    for (const CLI::Option* opt : cmd->parse_order()) {
      if (opt == skip && si < c->skips.size()) c->rules_in_order.emplace_back(false, c->skips[si++]);
      if (opt == ovr && oi < c->overrides.size()) c->rules_in_order.emplace_back(true, c->overrides[oi++]);
    }
    *run = [c] { return RunQuantize(*c); };
  });

  auto d = std::make_shared<DequantizeCliOptions>();
  auto* dq = app.add_subcommand("dequantize", "Dequantize an MLX quantized checkpoint back to float (MLX arithmetic)");
  dq->add_option("--src", d->src, "Quantized MLX checkpoint")->required();
  dq->add_option("--out", d->out, "Output directory (must not exist unless --force)")->required();
  dq->add_option("--dtype", d->dtype, "Output dtype (default: MLX's, i.e. the scales dtype for affine, bf16 for fp modes)")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}));
  dq->add_flag("--allow-overflow", d->allow_overflow,
               "With --dtype: store values beyond the dtype's range as infinities instead of refusing");
  dq->add_option("--max-shard-size", d->max_shard_size, "Largest shard (default 5GB)");
  dq->add_option("--threads", d->threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(0u, kMaxThreads));
  dq->add_flag("--force", d->force, "Replace an existing output directory");
  d->flags.Add(dq);
  d->card.Add(dq);
  dq->callback([run, d] { *run = [d] { return RunDequantize(*d); }; });
}

}  // namespace forge::cli
