// The model card every write leaves (README.md), checked field by field against what the test knows
// independently: the front matter's lineage from the repo ids the test gave the sources, the weight files'
// sha1 from coreutils' sha1sum, quantization overrides counted from the output's config.json, verify's own
// JSON for the recorded acceptance; SRC's card kept below; `--no-card`; `--record` and the manifest.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "tests/st/test_files.h"

namespace forge {
namespace {
namespace fs = std::filesystem;
using namespace testing;

// The front matter as key -> list of values (scalars are one-element lists), parsed line by line.
std::map<std::string, std::vector<std::string>> FrontMatter(const std::string& card) {
  std::map<std::string, std::vector<std::string>> fm;
  std::istringstream in(card);
  std::string line, key;
  std::getline(in, line);
  EXPECT_EQ(line, "---") << "a card starts with its YAML front matter";
  while (std::getline(in, line) && line != "---") {
    auto unquote = [](std::string v) {
      if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
      return v;
    };
    if (line.rfind("- ", 0) == 0) {
      fm[key].push_back(unquote(line.substr(2)));
    } else if (auto colon = line.find(": "); colon != std::string::npos) {
      key = line.substr(0, colon);
      fm[key].push_back(unquote(line.substr(colon + 2)));
    } else if (!line.empty() && line.back() == ':') {
      key = line.substr(0, line.size() - 1);
      fm[key];
    }
  }
  EXPECT_EQ(line, "---") << "front matter closed";
  return fm;
}

std::string Sha1sum(const std::string& path) {
  FILE* p = ::popen(("sha1sum '" + path + "'").c_str(), "r");
  char buf[41] = {};
  EXPECT_EQ(std::fread(buf, 1, 40, p), 40u);
  ::pclose(p);
  return std::string(buf, 40);
}

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

void Forge(const std::string& args) {
  auto r = RunForge(args);
  ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err;
}

// Every weight file of `dir` is in the card's Weights table with its real sha1.
void ExpectWeightHashes(const std::string& dir, const std::string& card) {
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.size() < 12 || f.substr(f.size() - 12) != ".safetensors") continue;
    ++files;
    EXPECT_NE(card.find(fmt::format("| `{}` | {} | `{}` |", f, fs::file_size(e.path()),
                                    Sha1sum(e.path().string()))),
              std::string::npos)
        << f << " in\n"
        << card;
  }
  EXPECT_GT(files, 0);
}

// A fine-tune and a donor that say which Hugging Face repos they are (transformers' `_name_or_path`), the
// fine-tune with a card of its own.
struct Inputs {
  std::string src, base;
};
Inputs NamedSources(const TempDir& t) {
  Inputs s{t.Sub("finetune"), t.Sub("donor")};
  CopyTree(FixturePath("trained-vlm-finetune-nomtp"), s.src);
  CopyTree(FixturePath("trained-vlm-hf"), s.base);
  for (auto [dir, id] :
       {std::pair{s.src, "Example-Org/Trained-FineTune"}, std::pair{s.base, "Qwen/Qwen3.5-Tiny-Base"}}) {
    nlohmann::json c = ReadJson(dir + "/config.json");
    c["_name_or_path"] = id;
    WriteJson(dir + "/config.json", c);
  }
  WriteFile(s.src + "/README.md",
            "---\nlicense: apache-2.0\nbase_model:\n- Qwen/Qwen3.5-Tiny-Base\ntags:\n- finetune\n---\n\n"
            "# Trained fine-tune\n\nThe fine-tune's own words, kept below forge's card.\n");
  return s;
}

TEST(ModelCard, GraftCardStatesLineagePolicyStatsHashesAndKeepsTheSourceCard) {
  TempDir t;
  const Inputs s = NamedSources(t);
  const std::string out = t.Sub("grafted");
  Forge("graft -q --src " + s.src + " --mtp-from " + s.base + " --out " + out);
  const std::string card = ReadFile(out + "/README.md");
  auto fm = FrontMatter(card);
  EXPECT_EQ(fm["base_model"],
            (std::vector<std::string>{"Example-Org/Trained-FineTune", "Qwen/Qwen3.5-Tiny-Base"}));
  EXPECT_EQ(fm["license"], std::vector<std::string>{"apache-2.0"});
  EXPECT_EQ(fm["library_name"], std::vector<std::string>{"transformers"}) << "an HF raw graft stays HF";
  EXPECT_FALSE(fm.count("base_model_relation"));
  for (const char* tag : {"mtp", "forge"}) EXPECT_TRUE(Has(fm["tags"], tag)) << tag;
  EXPECT_FALSE(Has(fm["tags"], "quantized"));
  EXPECT_NE(card.find("forge graft -q --src " + s.src), std::string::npos) << "the command line";
  EXPECT_NE(card.find("policy: `skip-fc`: the head is float"), std::string::npos);
  EXPECT_NE(card.find("Not verified by forge yet"), std::string::npos);
  const size_t below = card.find("## Card of the source model");
  ASSERT_NE(below, std::string::npos);
  EXPECT_NE(card.find("The fine-tune's own words, kept below forge's card.", below), std::string::npos);
  EXPECT_EQ(card.find("license: apache-2.0", below), std::string::npos)
      << "SRC's front matter is not repeated";
  ExpectWeightHashes(out, card);
}

TEST(ModelCard, ConvertAndQuantizeCardsStateTheirPassesAndQuantization) {
  TempDir t;
  const Inputs s = NamedSources(t);
  const std::string mlx = t.Sub("mlx"), q = t.Sub("q4"), qj = t.Sub("q4json");
  Forge("convert -q --src " + s.base + " --out " + mlx);
  std::string card = ReadFile(mlx + "/README.md");
  auto fm = FrontMatter(card);
  EXPECT_EQ(fm["base_model"], std::vector<std::string>{"Qwen/Qwen3.5-Tiny-Base"});
  EXPECT_EQ(fm["library_name"], std::vector<std::string>{"mlx"});
  EXPECT_EQ(fm["pipeline_tag"], std::vector<std::string>{"image-text-to-text"});
  for (const char* tag : {"mlx", "mtp", "forge"}) EXPECT_TRUE(Has(fm["tags"], tag)) << tag;
  EXPECT_NE(card.find("converted from hf to the `omlx` layout"), std::string::npos) << card;
  EXPECT_NE(card.find("None: every weight is stored as a float."), std::string::npos);
  ExpectWeightHashes(mlx, card);
  auto m = RunForge("verify --manifest " + mlx);
  EXPECT_EQ(m.exit_code, 0) << "convert writes the manifest the card quotes: " << m.out << m.err;

  // A 4-bit quantization with an 8-bit head: the overrides the card counts are config.json's.
  Forge("quantize -q --mode affine --bits 4 --mtp-policy affine:8:64 --src " + mlx + " --out " + q);
  card = ReadFile(q + "/README.md");
  fm = FrontMatter(card);
  EXPECT_TRUE(Has(fm["tags"], "quantized"));
  EXPECT_EQ(fm["base_model"], std::vector<std::string>{"Qwen/Qwen3.5-Tiny-Base"})
      << "the mlx copy names its lineage";
  const nlohmann::json quant = ReadJson(q + "/config.json")["quantization"];
  int overrides = 0;
  for (const auto& v : quant) overrides += v.is_object() || v.is_boolean();
  EXPECT_GT(overrides, 0);
  EXPECT_NE(card.find(fmt::format("Per-module overrides: {}.", overrides)), std::string::npos) << card;
  EXPECT_NE(card.find("| affine 8-bit, group 64 |"), std::string::npos);
  EXPECT_NE(card.find("Top level: affine 4-bit, group 64"), std::string::npos);
  EXPECT_NE(card.find("policy: `affine:8:64`: every head linear at these parameters"), std::string::npos);
  EXPECT_EQ(card.find("fidelity measured"), std::string::npos) << "not measured without --json / --report";
  ExpectWeightHashes(q, card);
  // The card of the card's source is kept below, and only the top card has live markers.
  EXPECT_NE(card.find("## Card of the source model"), std::string::npos);
  size_t markers = 0;
  for (size_t at = 0; (at = card.find("<!-- forge:verification:begin -->", at)) != std::string::npos; ++at)
    ++markers;
  EXPECT_EQ(markers, 1u);

  // Measured with --json: the fidelity numbers the run printed are the card's.
  auto r = RunForge("quantize --json --mode affine --bits 4 --src " + mlx + " --out " + qj);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto fid = nlohmann::json::parse(r.out)["fidelity"];
  EXPECT_NE(
      ReadFile(qj + "/README.md").find(fmt::format("cosine mean {:.5f}", fid["cosine_mean"].get<double>())),
      std::string::npos);
}

TEST(ModelCard, VerifyRecordFillsTheCardAndKeepsTheManifestValid) {
  TempDir t;
  const Inputs s = NamedSources(t);
  const std::string out = t.Sub("grafted");
  Forge("graft -q --src " + s.src + " --mtp-from " + s.base + " --out " + out);
  const std::string before = ReadFile(out + "/README.md");
  std::map<int, nlohmann::json> measured;
  for (int depth : {1, 2}) {
    auto r = RunForge(
        fmt::format("verify --identity --json --record --max-tokens 12 --depth {} --model {}", depth, out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    measured[depth] = nlohmann::json::parse(r.out);
    EXPECT_EQ(measured[depth]["record"]["card_updated"], true);
  }
  const std::string card = ReadFile(out + "/README.md");
  EXPECT_EQ(card.find("Not verified by forge yet"), std::string::npos);
  for (const auto& [depth, j] : measured) {
    std::string per;
    for (const auto& p : j["per_position"])
      per += (per.empty() ? "" : ", ") + fmt::format("{:.1f} %", 100.0 * p["rate"].get<double>());
    const std::string row = fmt::format("| {} | yes | {:.1f} % | {:.2f} | {} | {} | 12 | post-norm |", depth,
                                        100.0 * j["acceptance"].get<double>(),
                                        j["mean_accepted_length"].get<double>(), per, j["prompts"].size());
    EXPECT_NE(card.find(row), std::string::npos) << row << "\n" << card;
  }
  // Everything outside the verification section is unchanged.
  const std::string end = "<!-- forge:verification:end -->";
  EXPECT_EQ(card.substr(0, card.find("<!-- forge:verification:begin -->")),
            before.substr(0, before.find("<!-- forge:verification:begin -->")));
  EXPECT_EQ(card.substr(card.find(end)), before.substr(before.find(end)));
  const nlohmann::json rec = ReadJson(out + "/forge-verify.json");
  EXPECT_EQ(rec["identity"]["2"]["acceptance"], measured[2]["acceptance"]);
  EXPECT_EQ(rec["identity"]["1"]["manifest_sha1"], Sha1sum(out + "/forge-manifest.json"));
  auto m = RunForge("verify --manifest " + out);
  EXPECT_EQ(m.exit_code, 0) << "the card and the record are not weights: " << m.out << m.err;

  // A README that is not forge's is left alone; the record is still written.
  const std::string plain = t.Sub("plain");
  CopyTree(out, plain);
  WriteFile(plain + "/README.md", "# someone else's card\n");
  fs::remove(plain + "/forge-verify.json");
  auto r = RunForge("verify --identity --json --record --max-tokens 4 --model " + plain);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["record"]["card_updated"], false);
  EXPECT_EQ(ReadFile(plain + "/README.md"), "# someone else's card\n");
  EXPECT_TRUE(fs::exists(plain + "/forge-verify.json"));
  // --record belongs to --identity.
  EXPECT_EQ(RunForge("verify --record --manifest " + out).exit_code, 64);
}

TEST(ModelCard, NoCardCarriesTheSourceCardAndWritesNoManifest) {
  TempDir t;
  const Inputs s = NamedSources(t);
  Forge("convert -q --no-card --src " + s.src + " --out " + t.Sub("c"));
  Forge("graft -q --no-card --src " + s.src + " --mtp-from " + s.base + " --out " + t.Sub("g"));
  for (const char* d : {"c", "g"})
    EXPECT_EQ(ReadFile(t.Sub(d) + "/README.md"), ReadFile(s.src + "/README.md")) << d;
  EXPECT_FALSE(fs::exists(t.Sub("c/forge-manifest.json")));
  EXPECT_TRUE(fs::exists(t.Sub("g/forge-manifest.json"))) << "graft's manifest is its proof, card or not";
  // A source's verify record describes its weights, not an output's.
  WriteFile(s.src + "/forge-verify.json", "{\"format\": \"forge-verify/1\", \"identity\": {}}\n");
  Forge("convert -q --src " + s.src + " --out " + t.Sub("c2"));
  EXPECT_FALSE(fs::exists(t.Sub("c2/forge-verify.json")));
}

}  // namespace
}  // namespace forge
