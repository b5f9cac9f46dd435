// `forge convert --layout`: the files each runtime reads, key by key as docs/LAYOUTS.md states them from the
// runtimes' sources (MTPLX's expected head key sets are its constants.py, not forge's), `inspect` naming each
// layout, and the round-trip matrix: converting any layout's output into any other gives what converting the
// fixture there directly gives, bit for bit (HF-started norms within the one rounding of w + 1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "forge/base/float_access.h"
#include "forge/ckpt/checkpoint.h"
#include "forge/ckpt/tensor_names.h"
#include "tests/st/test_files.h"

namespace forge {
namespace {
namespace fs = std::filesystem;
using namespace testing;

const char* kLayouts[] = {"hf", "mlx-lm", "omlx", "mtplx"};

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

const nlohmann::json& Text(const nlohmann::json& c) {
  return c.contains("text_config") ? c["text_config"] : c;
}

std::set<std::string> TensorNames(const std::string& dir) {
  auto c = Checkpoint::Open(dir);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  std::set<std::string> names;
  for (const auto& [n, ref] : (*c)->tensors()) names.insert(n);
  return names;
}

std::set<std::string> HeaderNames(const std::string& file) {
  auto f = st::SafetensorsFile::Open(file);
  EXPECT_TRUE(f.ok()) << file;
  std::set<std::string> names;
  for (const auto& t : (*f)->header().tensors) names.insert(t.name);
  return names;
}

std::string Convert(const std::string& src, const std::string& layout, const std::string& out) {
  auto r = RunForge("convert -q --layout " + layout + " --src " + src + " --out " + out);
  EXPECT_EQ(r.exit_code, 0) << src << " -> " << layout << ": " << r.err;
  return out;
}

// "mtp.<module>.weight" for each module.
std::set<std::string> WeightKeys(std::initializer_list<const char*> modules) {
  std::set<std::string> k;
  for (const char* m : modules) k.insert(std::string("mtp.") + m + ".weight");
  return k;
}

// MTPLX constants.py: the dense head's 15 keys and the switch_mlp MoE head's 20.
std::set<std::string> MtplxDenseKeys() {
  return WeightKeys({"fc", "layers.0.input_layernorm", "layers.0.mlp.down_proj", "layers.0.mlp.gate_proj",
                     "layers.0.mlp.up_proj", "layers.0.post_attention_layernorm", "layers.0.self_attn.k_norm",
                     "layers.0.self_attn.k_proj", "layers.0.self_attn.o_proj", "layers.0.self_attn.q_norm",
                     "layers.0.self_attn.q_proj", "layers.0.self_attn.v_proj", "norm",
                     "pre_fc_norm_embedding", "pre_fc_norm_hidden"});
}
std::set<std::string> MtplxSwitchMoeKeys() {
  return WeightKeys({"fc",
                     "layers.0.input_layernorm",
                     "layers.0.post_attention_layernorm",
                     "layers.0.self_attn.k_norm",
                     "layers.0.self_attn.k_proj",
                     "layers.0.self_attn.o_proj",
                     "layers.0.self_attn.q_norm",
                     "layers.0.self_attn.q_proj",
                     "layers.0.self_attn.v_proj",
                     "layers.0.mlp.gate",
                     "layers.0.mlp.switch_mlp.gate_proj",
                     "layers.0.mlp.switch_mlp.up_proj",
                     "layers.0.mlp.switch_mlp.down_proj",
                     "layers.0.mlp.shared_expert.gate_proj",
                     "layers.0.mlp.shared_expert.up_proj",
                     "layers.0.mlp.shared_expert.down_proj",
                     "layers.0.mlp.shared_expert_gate",
                     "norm",
                     "pre_fc_norm_embedding",
                     "pre_fc_norm_hidden"});
}

// The files and keys docs/LAYOUTS.md says runtime `l` reads, in the checkpoint `out` (one MTP layer).
void ExpectRuntimeFiles(const std::string& out, const std::string& l, bool moe) {
  SCOPED_TRACE(out);
  const nlohmann::json c = ReadJson(out + "/config.json");
  const auto names = TensorNames(out);
  int head = 0, vision = 0;
  for (const auto& n : names) {
    SplitName sn = SplitTensorName(n);
    head += sn.part == ModelPart::kMtp;
    vision += sn.part == ModelPart::kVision;
    if (sn.part == ModelPart::kMtp) {
      // vLLM reads mtp.* only; mlx-lm / oMLX language_model.mtp.*; MTPLX's sidecar mtp.*.
      EXPECT_TRUE(StartsWith(n, l == "hf" || l == "mtplx" ? "mtp." : "language_model.mtp.")) << l << " " << n;
    }
  }
  EXPECT_GT(head, 0) << l;
  EXPECT_EQ(Text(c).value("mtp_num_hidden_layers", 0), 1) << l;
  EXPECT_EQ(vision > 0, l != "mlx-lm") << l << ": mlx-lm's sanitize drops the vision tower";
  EXPECT_EQ(c.contains("vision_config"), l != "mlx-lm") << l;
  // A transformers config key (the head shares embed_tokens): every layout keeps the source's false.
  EXPECT_EQ(Text(c).value("mtp_use_dedicated_embeddings", true), false) << l;
  EXPECT_EQ(c.contains("mlx_lm_extra_tensors"), l == "mtplx") << l;
  EXPECT_EQ(fs::exists(out + "/mtplx_runtime.json"), l == "mtplx") << l;
  if (l != "mtplx") {
    EXPECT_FALSE(c.contains("mtplx_mtp_norm_encoding")) << l;
    EXPECT_FALSE(fs::exists(out + "/mtp.safetensors")) << l;
    return;
  }
  // MTPLX: the head alone in the sidecar, outside the index; the encoding and file declared.
  EXPECT_EQ(c["mlx_lm_extra_tensors"]["mtp_file"], "mtp.safetensors");
  EXPECT_EQ(c["mtplx_mtp_norm_encoding"], "delta");
  std::set<std::string> weights;
  for (const auto& n : HeaderNames(out + "/mtp.safetensors"))
    if (EndsWith(n, ".weight")) weights.insert(n);  // a quantized head adds .scales / .biases
  EXPECT_EQ(weights, moe ? MtplxSwitchMoeKeys() : MtplxDenseKeys());
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string f = e.path().filename().string();
    if (f != "mtp.safetensors" && EndsWith(f, ".safetensors")) {
      for (const auto& n : HeaderNames(e.path().string()))
        EXPECT_NE(SplitTensorName(n).part, ModelPart::kMtp) << f;
    }
  }
  if (fs::exists(out + "/model.safetensors.index.json")) {
    for (auto& [k, v] : ReadJson(out + "/model.safetensors.index.json")["weight_map"].items())
      EXPECT_NE(v, "mtp.safetensors") << k;
  }
  const nlohmann::json rt = ReadJson(out + "/mtplx_runtime.json");
  EXPECT_EQ(rt["mtp_sidecar"], "mtp.safetensors");
  EXPECT_EQ(rt["mtp_depth_max"], 1);
  EXPECT_FALSE(rt.contains("speed_evidence")) << "nothing measured, nothing written";
}

TEST(Layouts, EachLayoutWritesTheFilesAndKeysItsRuntimeReads) {
  TempDir t;
  for (const std::string fx : {"dense-vlm-hf", "moe-vlm-hf"}) {
    for (const std::string l : kLayouts)
      ExpectRuntimeFiles(Convert(FixturePath(fx), l, t.Sub(fx + "." + l)), l, fx == "moe-vlm-hf");
  }
}

TEST(Layouts, InspectNamesTheLayoutAndTheRuntimesThatLoadIt) {
  TempDir t;
  struct Want {
    const char* layout;
    const char* runtime;
    bool mtp;
  };
  for (const std::string l : kLayouts) {
    const std::string out = Convert(FixturePath("moe-vlm-hf"), l, t.Sub(l));
    auto r = RunForge("inspect config --json " + out);
    EXPECT_EQ(r.exit_code, 0) << l << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["layout"]["name"], l);
    std::map<std::string, bool> mtp;
    for (const auto& rt : j["layout"]["runtimes"]) mtp[rt["runtime"]] = rt["mtp"];
    EXPECT_EQ(mtp["vllm"], l == "hf") << l;
    EXPECT_FALSE(mtp["mlx-lm"]) << "stock mlx-lm drops mtp.*";
    EXPECT_EQ(mtp["mlx-lm-pr990"], l != "mtplx") << l;
    EXPECT_TRUE(mtp["omlx"]) << l;
    EXPECT_EQ(mtp["mtplx"], l != "hf") << l;
  }
  // The sidecar without its declared encoding: inspect says MTPLX will guess.
  const std::string bare = t.Sub("bare");
  fs::copy(t.Sub("mtplx"), bare, fs::copy_options::recursive);
  nlohmann::json c = ReadJson(bare + "/config.json");
  c.erase("mtplx_mtp_norm_encoding");
  std::ofstream(bare + "/config.json") << c.dump(2);
  auto j = nlohmann::json::parse(RunForge("inspect config --json " + bare).out);
  bool warned = false;
  for (const auto& w : j["layout"]["warnings"])
    warned |= w.get<std::string>().find("guesses") != std::string::npos;
  EXPECT_TRUE(warned) << j["layout"].dump();
}

// Every tensor of a and b equal in name, dtype, shape and bytes; norms (1-D zero-centred families) within
// `norm_tolerance` when it is > 0.
// `without_vision`: b went through mlx-lm, which has no vision tower; a's is left out.
void ExpectSame(const std::string& a_dir, const std::string& b_dir, double norm_tolerance,
                bool without_vision) {
  auto a = Checkpoint::Open(a_dir), b = Checkpoint::Open(b_dir);
  ASSERT_TRUE(a.ok() && b.ok()) << a_dir << " / " << b_dir;
  size_t compared = 0;
  for (const auto& [name, ra] : (*a)->tensors()) {
    if (without_vision && SplitTensorName(name).part == ModelPart::kVision) continue;
    ++compared;
    auto rb = (*b)->Find(name);
    ASSERT_TRUE(rb.has_value()) << name << " missing in " << b_dir;
    ASSERT_EQ(ra.info->dtype, rb->info->dtype) << name;
    ASSERT_EQ(ra.info->shape, rb->info->shape) << name;
    const uint8_t *pa = ra.file->Data(*ra.info), *pb = rb->file->Data(*rb->info);
    if (std::memcmp(pa, pb, ra.info->nbytes()) == 0) continue;
    const bool norm = IsZeroCenteredNorm(ClassifyRole(SplitTensorName(name))) && ra.info->shape.size() == 1;
    ASSERT_TRUE(norm && norm_tolerance > 0) << name << " differs: " << a_dir << " vs " << b_dir;
    for (uint64_t i = 0; i < ra.info->numel(); ++i) {
      EXPECT_LE(std::fabs(LoadAsF32(ra.info->dtype, pa, i) - LoadAsF32(rb->info->dtype, pb, i)),
                norm_tolerance)
          << name << "[" << i << "]";
    }
  }
  EXPECT_EQ(compared, (*b)->tensors().size()) << a_dir << " vs " << b_dir;
}

TEST(Layouts, RoundTripMatrixKeepsEveryTensor) {
  TempDir t;
  // Dense and MoE, float heads from HF and from MLX, and a 4-bit quantized head (no hf: MLX quantization).
  for (const std::string fx : {"dense-vlm-hf", "moe-vlm-hf", "moe-vlm-mlx", "dense-vlm-mlx-q4"}) {
    const bool quantized = fx == "dense-vlm-mlx-q4", from_hf = EndsWith(fx, "-hf");
    std::vector<std::string> layouts;
    for (const char* l : kLayouts)
      if (!quantized || std::string(l) != "hf") layouts.push_back(l);
    std::map<std::string, std::string> direct;
    for (const auto& l : layouts) direct[l] = Convert(FixturePath(fx), l, t.Sub(fx + "." + l));
    for (const auto& a : layouts) {
      for (const auto& b : layouts) {
        const std::string via = Convert(direct[a], b, t.Sub(fx + "." + a + "." + b));
        // Only hf -> MLX rounds (w + 1 in bf16: half an ulp of [1, 2) is 2^-8); out of hf it is exact.
        const bool rounded = from_hf && a != "hf" && b == "hf";
        ExpectSame(direct[b], via, rounded ? std::ldexp(1.0, -8) : 0.0, a == "mlx-lm");
      }
    }
  }
}

std::string Graft(const std::string& src, const std::string& base, const std::string& layout,
                  const std::string& out, const std::string& extra = "") {
  auto r = RunForge("graft -q --json --layout " + layout + " --src " + src + " --mtp-from " + base +
                    " --out " + out + extra);
  EXPECT_EQ(r.exit_code, 0) << src << " -> graft " << layout << ": " << r.err;
  if (r.exit_code == 0) {
    EXPECT_EQ(nlohmann::json::parse(r.out)["layout"], layout);
  }
  return out;
}

// `forge graft --layout`: each layout's files and keys as convert writes them, named by inspect, and every
// layout holding what the default (omlx) graft converted into that layout holds, bit for bit; the same
// for a 4-bit fine-tune, whose MTPLX head quantization (an 8-bit head) graft and convert state alike.
TEST(Layouts, GraftWritesEachLayoutWithTheSameValues) {
  TempDir t;
  for (const std::string ft : {"dense-vlm-finetune-nomtp", "moe-vlm-finetune-nomtp"}) {
    const bool moe = ft == "moe-vlm-finetune-nomtp";
    const std::string base = FixturePath(moe ? "moe-vlm-hf" : "dense-vlm-hf");
    const std::string mlx = Convert(FixturePath(ft), "omlx", t.Sub(ft + ".mlx"));
    const std::string omlx = Graft(mlx, base, "omlx", t.Sub(ft + ".graft.omlx"));
    for (const std::string l : {"omlx", "mlx-lm", "mtplx"}) {
      const std::string out = l == "omlx" ? omlx : Graft(mlx, base, l, t.Sub(ft + ".graft." + l));
      ExpectRuntimeFiles(out, l, moe);
      auto r = RunForge("inspect config --json " + out);
      EXPECT_EQ(nlohmann::json::parse(r.out)["layout"]["name"], l) << r.out;
      ExpectSame(Convert(omlx, l, t.Sub(ft + ".graft.omlx." + l)), out, 0.0, false);
    }
    ExpectRuntimeFiles(Graft(FixturePath(ft), base, "hf", t.Sub(ft + ".graft.hf")), "hf", moe);
    // The trunk is never converted by graft: a layout of the other family is a usage error, nothing written.
    auto r =
        RunForge("graft -q --layout hf --src " + mlx + " --mtp-from " + base + " --out " + t.Sub("refused"));
    EXPECT_EQ(r.exit_code, 64) << r.err;
    EXPECT_NE(r.err.find("--layout hf needs an HF raw SRC"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(t.Sub("refused")));
  }

  const std::string q4 = t.Sub("ft-q4");
  auto q = RunForge("quantize -q --mode affine --bits 4 --src " + t.Sub("dense-vlm-finetune-nomtp.mlx") +
                    " --out " + q4);
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const std::string base = FixturePath("dense-vlm-hf");
  // skip-fc (the default) quantizes the head like the trunk but mtp.fc (MTPLX's "cyankiwi"); an explicit
  // MODE:BITS:GROUP quantizes every head linear, fc included ("all").
  for (const std::string policy : {"skip-fc", "affine:8:64"}) {
    const bool all = policy != "skip-fc";
    const std::string side = Graft(q4, base, "mtplx", t.Sub("q4.mtplx." + policy), " --mtp-policy " + policy);
    ExpectRuntimeFiles(side, "mtplx", false);
    const nlohmann::json mq = ReadJson(side + "/config.json")["mtplx_mtp_quantization"];
    EXPECT_EQ(mq["prequantized"], true);
    EXPECT_EQ(mq["bits"], all ? 8 : 4);
    EXPECT_EQ(mq["group_size"], 64);
    EXPECT_EQ(mq["policy"], all ? "all" : "cyankiwi");
    EXPECT_EQ(mq["modules"].contains("fc"), all);
    EXPECT_EQ(mq["modules"]["layers.0.self_attn.q_proj"]["bits"], all ? 8 : 4);
    const std::string via =
        Convert(Graft(q4, base, "omlx", t.Sub("q4.omlx." + policy), " --mtp-policy " + policy), "mtplx",
                t.Sub("q4.omlx.mtplx." + policy));
    ExpectSame(via, side, 0.0, false);
    EXPECT_EQ(ReadJson(via + "/config.json")["mtplx_mtp_quantization"], mq);
  }
}

}  // namespace
}  // namespace forge
