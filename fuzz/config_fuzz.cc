// config.json as any bytes beside a real checkpoint's tensors (the dense VLM fixture): inspect and the
// reference decoder's weight loader must refuse a geometry that does not match the tensors, never index
// past them. Every matrix the loader accepts is read at its last row (ASan/the mapping bound the read).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "forge/ckpt/checkpoint.h"
#include "fuzz/fuzz_support.h"
#include "inspect/classify.h"
#include "verify/model/weights.h"

namespace {

const std::string& CheckpointDir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    std::string d = forge::fuzz::ScratchDir() + "/ckpt";
    fs::create_directories(d);
    const fs::path fixture = fs::path(FORGE_FIXTURES_DIR) / "dense-vlm-hf";
    for (const auto& e : fs::directory_iterator(fixture)) {
      if (e.path().extension() == ".safetensors" || e.path().filename() == "model.safetensors.index.json") {
        fs::create_symlink(e.path(), fs::path(d) / e.path().filename());
      }
    }
    return d;
  }();
  return dir;
}

void ReadLastRow(const forge::verify::model::Matrix& m, std::vector<float>& row) {
  if (m.empty() || m.rows() <= 0 || m.cols() <= 0) return;
  row.resize(static_cast<size_t>(m.cols()));
  m.Row(m.rows() - 1, row.data());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = CheckpointDir();
  forge::fuzz::WriteBytes(dir + "/config.json", data, size);
  auto ckpt = forge::Checkpoint::Open(dir);
  if (!ckpt.ok()) return 0;
  (void)forge::inspect::InspectCheckpoint(**ckpt);
  auto weights = forge::verify::model::LoadModelWeights(**ckpt);
  if (!weights.ok()) return 0;
  std::vector<float> row;
  ReadLastRow(weights->lm_head, row);
  for (const auto& layer : weights->layers) {
    ReadLastRow(layer.mlp.down, row);
    ReadLastRow(layer.full_attention ? layer.attn.o : layer.gdn.out, row);
  }
  return 0;
}
