// The safetensors header parser on any file bytes. Whatever it accepts must describe tensors that lie
// inside the file, in order, without overlap, with byte lengths equal to shape x dtype; every accepted
// tensor's first and last bytes are read (ASan reports a read outside the buffer).
#include <cstdint>
#include <vector>

#include "forge/st/header.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so any read past the end is a heap overflow ASan sees.
  std::vector<uint8_t> file(data, data + size);
  auto header = forge::st::ParseHeader(file.data(), file.size(), file.size());
  if (!header.ok()) {
    if (header.status().message().empty()) forge::fuzz::Violation("an error without a message");
    return 0;
  }
  uint64_t previous_end = 0;
  for (const auto& t : header->tensors) {
    if (t.begin < previous_end || t.end < t.begin) forge::fuzz::Violation("offsets out of order: " + t.name);
    if (header->data_start + t.end > size) forge::fuzz::Violation("tensor past the end of the file: " + t.name);
    uint64_t numel = 0;
    if (!forge::st::ShapeNumel(t.shape, &numel)) forge::fuzz::Violation("accepted an overflowing shape");
    if ((numel * forge::DTypeBits(t.dtype) + 7) / 8 != t.nbytes()) forge::fuzz::Violation("size != shape: " + t.name);
    previous_end = t.end;
    if (t.nbytes() > 0) {
      volatile uint8_t first = file[header->data_start + t.begin];
      volatile uint8_t last = file[header->data_start + t.end - 1];
      (void)first;
      (void)last;
    }
  }
  return 0;
}
