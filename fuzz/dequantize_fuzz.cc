// The quantized-tensor decoder on any bytes: the first bytes pick the format (mode, bits, group size,
// scales dtype) and the matrix shape, the rest are the packed codes, scales and biases. Parameters the
// codec does not support must be refused by ValidateParams; supported ones must dequantize any bytes
// (NaN, infinities, subnormal scales) without reading past the buffers.
#include <cstdint>
#include <cstring>
#include <vector>

#include "quantize/codec.h"

using namespace forge;
using namespace forge::quant;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 6) return 0;
  static const QuantMode kModes[] = {QuantMode::kAffine, QuantMode::kMxfp4, QuantMode::kMxfp8, QuantMode::kNvfp4};
  static const DType kScales[] = {DType::kBF16, DType::kF16, DType::kF32, DType::kU8};
  static const DType kOut[] = {DType::kBF16, DType::kF16, DType::kF32};
  QuantParams p{kModes[data[0] % 4], 1 + data[1] % 8, 1 << (data[2] % 8)};
  const DType scales_dtype = kScales[data[3] % 4];
  const DType out_dtype = kOut[data[3] / 4 % 3];
  const uint64_t rows = 1 + data[4] % 4;
  const uint64_t k = static_cast<uint64_t>(p.group_size) * (1 + data[5] % 4);
  data += 6;
  size -= 6;
  if (!ValidateParams(p).ok()) return 0;
  if (ScalesDType(p, DType::kBF16) != scales_dtype && !(p.mode == QuantMode::kAffine && scales_dtype != DType::kU8))
    return 0;  // the scales dtypes checkpoints carry
  const uint64_t packed_bytes = rows * k * static_cast<uint64_t>(p.bits) / 8;
  const uint64_t scale_bytes = rows * (k / static_cast<uint64_t>(p.group_size)) * DTypeBits(scales_dtype) / 8;
  const uint64_t need = packed_bytes + scale_bytes * (HasBiases(p) ? 2 : 1);
  if (rows * k * static_cast<uint64_t>(p.bits) % 8 != 0 || size < need) return 0;
  // Exact-size copies: a read past any of them is a heap overflow.
  std::vector<uint8_t> packed(data, data + packed_bytes);
  std::vector<uint8_t> scales(data + packed_bytes, data + packed_bytes + scale_bytes);
  std::vector<uint8_t> biases;
  if (HasBiases(p)) biases.assign(data + packed_bytes + scale_bytes, data + need);
  std::vector<uint8_t> out(rows * k * DTypeBits(out_dtype) / 8);
  DequantizeRows(p, scales_dtype, packed.data(), scales.data(), biases.empty() ? nullptr : biases.data(), rows, k,
                 out_dtype, out.data());
  return 0;
}
