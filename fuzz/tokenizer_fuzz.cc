// tokenizer.json as any bytes: the loader refuses what it cannot use; what it loads must encode and decode
// a fixed text (mixed scripts, digits, whitespace runs, a special-looking token) without crashing.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "verify/tokenizer/bpe_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = forge::fuzz::ScratchDir() + "/tokenizer.json";
  forge::fuzz::WriteBytes(path, data, size);
  auto tok = forge::verify::BpeTokenizer::Load(path);
  if (!tok.ok()) return 0;
  const auto ids = (*tok)->Encode("Hello, 世界! 12345   \n\t<|im_end|> ünïcödé");
  if (ids.ok()) (void)(*tok)->Decode(*ids);
  return 0;
}
