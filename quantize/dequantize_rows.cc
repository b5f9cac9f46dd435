// DequantizeRows: the reference's arithmetic (codec.cc, MLX's CPU op graph) with the per-group work hoisted.
// A group's scale, bias or shared factor is decoded once; when the group has at least as many elements as
// there are codes (2- to 6-bit affine codes in groups of 32-128), the output bits of every code are computed
// once into a table and each element is a lookup (4- and 2-bit codes unpacked a byte at a time); for mxfp4
// and nvfp4 the table of every scale byte, and mxfp8's element values, are built once per process; 8-bit
// codes are computed per element, affine with bf16 scales and mxfp8 into bf16 or f32 16 lanes at a time. Same
// operations per code, so the same bytes, NaN and infinity included (tests/quantize/dequantize_rows_test.cc
// holds it to the reference).
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "forge/base/float_access.h"
#include "forge/base/half.h"
#include "forge/base/simd16.h"
#include "quantize/bitpack.h"
#include "quantize/codec.h"
#include "quantize/fp_formats.h"
#include "quantize/round_to.h"

namespace forge::quant {
namespace {

// The bits StoreFromF32 writes for each output dtype.
struct Bf16Out {
  using T = uint16_t;
  static T Encode(float v) { return F32ToBf16(v); }
};
struct F16Out {
  using T = uint16_t;
  static T Encode(float v) { return F32ToF16(v); }
};
struct F32Out {
  using T = float;
  static T Encode(float v) { return v; }
};

constexpr uint64_t kMaxGroup = 128;

// The raw value of an fp mode's per-group scale byte: E4M3 for nvfp4, E8M0 (a power of two, 255 = infinity)
// for mxfp4 / mxfp8.
float SharedFactor(QuantMode mode, uint8_t s) {
  if (mode == QuantMode::kNvfp4) return E4M3DecodeMlx(s);
  return s == 255 ? INFINITY : std::ldexp(1.0f, static_cast<int>(s) - 127);
}

// The fp4 modes' value of (code, scale byte) in the output dtype: 256 x 16 entries, computed once per output
// dtype with the reference's arithmetic, so a group costs one lookup per element.
template <typename Out>
const typename Out::T* Fp4Values(QuantMode mode, DType out_dtype) {
  auto build = [out_dtype](QuantMode m) {
    std::vector<typename Out::T> t(256 * 16);
    for (uint32_t s = 0; s < 256; ++s) {
      const float factor = RoundTo(out_dtype, SharedFactor(m, static_cast<uint8_t>(s)));
      for (uint32_t q = 0; q < 16; ++q)
        t[s * 16 + q] = Out::Encode(RoundTo(out_dtype, RoundTo(out_dtype, kE2M1Table[q]) * factor));
    }
    return t;
  };
  static const std::vector<typename Out::T> mx = build(QuantMode::kMxfp4), nv = build(QuantMode::kNvfp4);
  return (mode == QuantMode::kNvfp4 ? nv : mx).data();
}

// mxfp8's element values rounded to the output dtype, once per output dtype.
template <typename Out>
const float* Fp8Elements(DType out_dtype) {
  static const std::vector<float> t = [out_dtype] {
    std::vector<float> v(256);
    for (uint32_t q = 0; q < 256; ++q) v[q] = RoundTo(out_dtype, E4M3DecodeMlx(static_cast<uint8_t>(q)));
    return v;
  }();
  return t.data();
}

// Codes looked up in a per-group table (no more codes than the group has elements), else one byte per code.
bool Tabulated(const QuantParams& p) {
  return p.bits < 8 && (1u << p.bits) <= static_cast<uint32_t>(p.group_size);
}

// bf16 rounding of 16 lanes, as F32ToBf16 (NaN kept quiet, else nearest even), returned widened. The NaN
// mask is the sign of 0x7f800000 - |u| spread by an arithmetic shift, not a comparison: GCC 12 compiles a
// comparison of 16 lanes in the AVX2 clone as 16 scalar ones (dequantize ran at a third of its speed there).
FORGE_INLINE simd::V16 RoundBf16(simd::V16 v) {
  const simd::U16 u = simd::Bits(v);
  const simd::U16 nan =
      reinterpret_cast<simd::U16>(reinterpret_cast<simd::I16>(0x7f800000u - (u & 0x7fffffffu)) >> 31);
  const simd::U16 rounded = ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) << 16;
  const simd::U16 quiet = ((u >> 16) | 0x40u) << 16;
  return simd::FromBits((rounded & ~nan) | (quiet & nan));
}

// Affine 8-bit codes with bf16 scales into bf16, 16 codes at a time: q * scale rounded, + bias rounded.
FORGE_INLINE void Affine8Bf16Lanes(const uint8_t* codes, uint64_t g, float scale, float bias, uint16_t* out) {
  for (uint64_t i = 0; i < g; i += simd::kLanes) {
    const simd::V16 q = __builtin_convertvector(simd::ByteLanes(codes + i), simd::V16);
    const simd::V16 v = RoundBf16(RoundBf16(q * scale) + bias);
    const simd::H16 h = __builtin_convertvector(simd::Bits(v) >> 16, simd::H16);
    std::memcpy(out + i, &h, sizeof h);
  }
}

// mxfp8 into bf16, 16 codes at a time: the (pre-rounded) element times the group's factor, rounded.
FORGE_INLINE void Mxfp8Bf16Lanes(const uint8_t* codes, uint64_t g, const float* element, float factor,
                                 uint16_t* out) {
  for (uint64_t i = 0; i < g; i += simd::kLanes) {
    simd::V16 e;
    for (int j = 0; j < simd::kLanes; ++j) e[j] = element[codes[i + j]];
    const simd::H16 h = __builtin_convertvector(simd::Bits(RoundBf16(e * factor)) >> 16, simd::H16);
    std::memcpy(out + i, &h, sizeof h);
  }
}

// The same two into float32 (what --report's fidelity sums read): the values above, widened exactly.
FORGE_INLINE void Affine8F32Lanes(const uint8_t* codes, uint64_t g, float scale, float bias, uint8_t* out) {
  for (uint64_t i = 0; i < g; i += simd::kLanes) {
    const simd::V16 q = __builtin_convertvector(simd::ByteLanes(codes + i), simd::V16);
    const simd::V16 v = RoundBf16(RoundBf16(q * scale) + bias);
    std::memcpy(out + i * sizeof(float), &v, sizeof v);  // out may be unaligned
  }
}
// Affine 4-bit codes into float32, computed rather than looked up (16 lanes of arithmetic beat 16 table
// reads): the table's values, as the table holds the same operations per code.
FORGE_INLINE void Affine4F32Lanes(const uint8_t* codes, uint64_t g, float scale, float bias, uint8_t* out) {
  for (uint64_t i = 0; i < g; i += simd::kLanes) {
    const simd::V16 q = __builtin_convertvector(simd::NibbleLanes(codes + i / 2), simd::V16);
    const simd::V16 v = RoundBf16(RoundBf16(q * scale) + bias);
    std::memcpy(out + i * sizeof(float), &v, sizeof v);  // out may be unaligned
  }
}
// mxfp4 / nvfp4 into float32: the scale byte's 16 values looked up by nibble lanes.
FORGE_INLINE void Fp4F32Lanes(const uint8_t* codes, uint64_t g, const float* values, uint8_t* out) {
  for (uint64_t i = 0; i < g; i += simd::kLanes) {
    const simd::I16 q = simd::NibbleLanes(codes + i / 2);
    simd::V16 v;
    for (int j = 0; j < simd::kLanes; ++j) v[j] = values[q[j]];
    std::memcpy(out + i * sizeof(float), &v, sizeof v);  // out may be unaligned
  }
}
FORGE_INLINE void Mxfp8F32Lanes(const uint8_t* codes, uint64_t g, const float* element, float factor, uint8_t* out) {
  for (uint64_t i = 0; i < g; i += simd::kLanes) {
    simd::V16 e;
    for (int j = 0; j < simd::kLanes; ++j) e[j] = element[codes[i + j]];
    const simd::V16 v = e * factor;
    std::memcpy(out + i * sizeof(float), &v, sizeof v);
  }
}

// The cloned entry points take no vectors: clang checks the vector calling convention at every call inside
// a target_clones function (its AVX2 clone may not pass 64-byte vectors), so the vector code lives in the
// always-inlined bodies above, which it checks without target features, and is inlined into each clone.
FORGE_HOT void Affine8Bf16(const uint8_t* codes, uint64_t g, float scale, float bias, uint16_t* out) {
  Affine8Bf16Lanes(codes, g, scale, bias, out);
}
FORGE_HOT void Mxfp8Bf16(const uint8_t* codes, uint64_t g, const float* element, float factor,
                         uint16_t* out) {
  Mxfp8Bf16Lanes(codes, g, element, factor, out);
}
FORGE_HOT void Affine8F32(const uint8_t* codes, uint64_t g, float scale, float bias, uint8_t* out) {
  Affine8F32Lanes(codes, g, scale, bias, out);
}
FORGE_HOT void Affine4F32(const uint8_t* codes, uint64_t g, float scale, float bias, uint8_t* out) {
  Affine4F32Lanes(codes, g, scale, bias, out);
}
FORGE_HOT void Fp4F32(const uint8_t* codes, uint64_t g, const float* values, uint8_t* out) {
  Fp4F32Lanes(codes, g, values, out);
}
FORGE_HOT void Mxfp8F32(const uint8_t* codes, uint64_t g, const float* element, float factor, uint8_t* out) {
  Mxfp8F32Lanes(codes, g, element, factor, out);
}

template <typename Out>
void Run(const QuantParams& p, DType sdt, const uint8_t* packed, const uint8_t* scales, const uint8_t* biases,
         uint64_t rows, uint64_t k, DType out_dtype, uint8_t* out) {
  using T = typename Out::T;
  const int bits = p.bits;
  const uint64_t g = static_cast<uint64_t>(p.group_size), groups = k / g, row_bytes = k * bits / 8;
  const uint32_t levels = 1u << bits;
  const bool tabulate = Tabulated(p);
  const bool affine = p.mode == QuantMode::kAffine;
  const float* fp8_element = p.mode == QuantMode::kMxfp8 ? Fp8Elements<Out>(out_dtype) : nullptr;
  const T* fp4_values = !affine && bits == 4 ? Fp4Values<Out>(p.mode, out_dtype) : nullptr;
  T table[256], buf[kMaxGroup];
  for (uint64_t r = 0; r < rows; ++r) {
    const uint8_t* row_in = packed + r * row_bytes;
    for (uint64_t gi = 0; gi < groups; ++gi) {
      const uint64_t group_index = r * groups + gi;
      float scale = 0, bias = 0, factor = 0;
      if (affine) {
        scale = LoadAsF32(sdt, scales, group_index);
        bias = LoadAsF32(sdt, biases, group_index);
      } else if (fp8_element) {  // the fp4 modes' factors are inside their tables
        factor = RoundTo(out_dtype, SharedFactor(p.mode, scales[group_index]));
      }
      // Affine codes, or mxfp8's (the only fp mode not fully tabulated).
      auto value = [&](uint32_t q) -> float {
        if (affine) return RoundTo(sdt, RoundTo(sdt, static_cast<float>(q) * scale) + bias);
        return RoundTo(out_dtype, fp8_element[q] * factor);
      };
      const uint64_t first = gi * g;
      if constexpr (std::is_same_v<Out, F32Out>) {
        // Into float32 (what --report reads), every vector case written in place.
        uint8_t* dst = out + (r * k + first) * sizeof(float);
        if (affine && sdt == DType::kBF16 && bits == 4) {
          Affine4F32(row_in + first / 2, g, scale, bias, dst);
          continue;
        }
        if (affine && sdt == DType::kBF16 && bits == 8) {
          Affine8F32(row_in + first, g, scale, bias, dst);
          continue;
        }
        if (fp8_element) {
          Mxfp8F32(row_in + first, g, fp8_element, factor, dst);
          continue;
        }
        if (fp4_values && g % simd::kLanes == 0) {
          Fp4F32(row_in + first / 2, g, fp4_values + 16 * scales[group_index], dst);
          continue;
        }
      }
      if (fp4_values) {  // mxfp4 / nvfp4: the whole table is precomputed
        const T* t = fp4_values + 16 * scales[group_index];
        const uint8_t* b = row_in + first / 2;
        for (uint64_t i = 0; i < g / 2; ++i) {
          buf[2 * i] = t[b[i] & 15];
          buf[2 * i + 1] = t[b[i] >> 4];
        }
      } else if (tabulate) {
        for (uint32_t q = 0; q < levels; ++q) table[q] = Out::Encode(value(q));
        if (bits == 4) {
          const uint8_t* b = row_in + first / 2;
          for (uint64_t i = 0; i < g / 2; ++i) {
            buf[2 * i] = table[b[i] & 15];
            buf[2 * i + 1] = table[b[i] >> 4];
          }
        } else if (bits == 2) {
          const uint8_t* b = row_in + first / 4;
          for (uint64_t i = 0; i < g / 4; ++i) {
            for (int j = 0; j < 4; ++j) buf[4 * i + j] = table[(b[i] >> (2 * j)) & 3];
          }
        } else {
          for (uint64_t i = 0; i < g; ++i) buf[i] = table[UnpackCode(row_in, first + i, bits)];
        }
      } else if constexpr (std::is_same_v<Out, Bf16Out>) {
        const uint8_t* b = row_in + first;  // 8-bit codes: one byte each
        if (affine && sdt == DType::kBF16) {
          Affine8Bf16(b, g, scale, bias, buf);
        } else if (!affine) {
          Mxfp8Bf16(b, g, fp8_element, factor, buf);
        } else {
          for (uint64_t i = 0; i < g; ++i) buf[i] = Out::Encode(value(b[i]));
        }
      } else {
        const uint8_t* b = row_in + first;
        for (uint64_t i = 0; i < g; ++i) buf[i] = Out::Encode(value(b[i]));
      }
      std::memcpy(out + (r * k + first) * sizeof(T), buf, g * sizeof(T));
    }
  }
}

}  // namespace

void DequantizeRows(const QuantParams& p, DType scales_dtype, const uint8_t* packed, const uint8_t* scales,
                    const uint8_t* biases, uint64_t rows, uint64_t k, DType out_dtype, uint8_t* out) {
  // Tabulated or one byte per code; anything else (6-bit codes in groups of 32) gains nothing from either
  // and takes the reference.
  if (static_cast<uint64_t>(p.group_size) > kMaxGroup || !(Tabulated(p) || p.bits == 8)) {
    return DequantizeRowsReference(p, scales_dtype, packed, scales, biases, rows, k, out_dtype, out);
  }
  switch (out_dtype) {
    case DType::kBF16:
      return Run<Bf16Out>(p, scales_dtype, packed, scales, biases, rows, k, out_dtype, out);
    case DType::kF16:
      return Run<F16Out>(p, scales_dtype, packed, scales, biases, rows, k, out_dtype, out);
    case DType::kF32:
      return Run<F32Out>(p, scales_dtype, packed, scales, biases, rows, k, out_dtype, out);
    default:
      return DequantizeRowsReference(p, scales_dtype, packed, scales, biases, rows, k, out_dtype, out);
  }
}

}  // namespace forge::quant
