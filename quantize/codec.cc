#include "quantize/codec.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "forge/base/float_access.h"
#include "forge/base/simd16.h"
#include "forge/base/quant_rules.h"
#include "quantize/bitpack.h"
#include "quantize/fp_formats.h"
#include "quantize/groups.h"
#include "quantize/round_to.h"
#include "quantize/row_kernels.h"

namespace forge::quant {

std::string_view QuantModeName(QuantMode m) {
  switch (m) {
    case QuantMode::kAffine: return "affine";
    case QuantMode::kMxfp4: return "mxfp4";
    case QuantMode::kMxfp8: return "mxfp8";
    case QuantMode::kNvfp4: return "nvfp4";
  }
  return "affine";
}

std::optional<QuantMode> ParseQuantMode(std::string_view name) {
  for (QuantMode m : {QuantMode::kAffine, QuantMode::kMxfp4, QuantMode::kMxfp8, QuantMode::kNvfp4}) {
    if (QuantModeName(m) == name) return m;
  }
  return std::nullopt;
}

QuantParams DefaultParams(QuantMode m) {
  switch (m) {
    case QuantMode::kAffine: return {m, 4, 64};
    case QuantMode::kMxfp4: return {m, 4, 32};
    case QuantMode::kMxfp8: return {m, 8, 32};
    case QuantMode::kNvfp4: return {m, 4, 16};
  }
  return {m, 4, 64};
}

Status ValidateParams(const QuantParams& p) {
  auto problem = QuantParamsProblem(QuantModeName(p.mode), p.bits, p.group_size);
  if (!problem) return Status();
  return Status::Error(ExitCode::kUsage, fmt::format("[quantize] {} with bits {} and group size {}: {}",
                                                     QuantModeName(p.mode), p.bits, p.group_size, *problem));
}

DType ScalesDType(const QuantParams& p, DType input) { return p.mode == QuantMode::kAffine ? input : DType::kU8; }
bool HasBiases(const QuantParams& p) { return p.mode == QuantMode::kAffine; }
DType DefaultDequantDType(const QuantParams& p, DType scales_dtype) {
  return p.mode == QuantMode::kAffine ? scales_dtype : DType::kBF16;
}

void QuantizeRows(const QuantParams& p, Rules rules, DType dtype, const uint8_t* in, uint64_t rows, uint64_t k,
                  uint8_t* packed, uint8_t* scales, uint8_t* biases) {
  const uint64_t groups = k / static_cast<uint64_t>(p.group_size);
  const uint64_t row_bytes = k * static_cast<uint64_t>(p.bits) / 8, in_row = k * DTypeBits(dtype) / 8;
  std::vector<float> w(k), scale(groups), bias(groups);
  std::vector<uint32_t> codes(k);
  std::vector<uint8_t> bytes(groups);
  const RowScales row_scales{scale.data(), bias.data(), bytes.data()};
  for (uint64_t r = 0; r < rows; ++r) {
    simd::WidenToF32(dtype, in + r * in_row, static_cast<int64_t>(k), w.data());
    QuantizeRowF32(p, rules, dtype, w.data(), k, codes.data(), row_scales);
    PackRow(codes.data(), k, p.bits, packed + r * row_bytes);
    if (p.mode == QuantMode::kAffine) {
      for (uint64_t gi = 0; gi < groups; ++gi) {  // rounded only now, as MLX
        StoreFromF32(dtype, scales, r * groups + gi, scale[gi]);
        StoreFromF32(dtype, biases, r * groups + gi, bias[gi]);
      }
    } else {
      std::memcpy(scales + r * groups, bytes.data(), groups);
    }
  }
}

void DequantizeRowsReference(const QuantParams& p, DType scales_dtype, const uint8_t* packed, const uint8_t* scales,
                             const uint8_t* biases, uint64_t rows, uint64_t k, DType out_dtype, uint8_t* out) {
  const uint64_t g = static_cast<uint64_t>(p.group_size), groups = k / g;
  const uint64_t row_bytes = k * static_cast<uint64_t>(p.bits) / 8;
  for (uint64_t r = 0; r < rows; ++r) {
    const uint8_t* row_in = packed + r * row_bytes;
    for (uint64_t gi = 0; gi < groups; ++gi) {
      const uint64_t group_index = r * groups + gi;
      for (uint64_t i = 0; i < g; ++i) {
        const uint32_t q = UnpackCode(row_in, gi * g + i, p.bits);
        float v;
        if (p.mode == QuantMode::kAffine) {
          // MLX CPU: q converted to the scales dtype T, q*scale rounded to T, + bias rounded to T.
          const DType t = scales_dtype;
          const float scale = LoadAsF32(t, scales, group_index), bias = LoadAsF32(t, biases, group_index);
          v = RoundTo(t, RoundTo(t, static_cast<float>(q) * scale) + bias);
        } else {
          const uint8_t s = scales[group_index];
          const float element = p.mode == QuantMode::kMxfp8 ? E4M3DecodeMlx(static_cast<uint8_t>(q)) : kE2M1Table[q];
          const float factor = p.mode == QuantMode::kNvfp4 ? E4M3DecodeMlx(s)
                                                            : (s == 255 ? INFINITY : std::ldexp(1.0f, s - 127));
          // Each factor in the output dtype, the product rounded to it.
          v = RoundTo(out_dtype, RoundTo(out_dtype, element) * RoundTo(out_dtype, factor));
        }
        StoreFromF32(out_dtype, out, r * k + gi * g + i, v);
      }
    }
  }
}

}  // namespace forge::quant
