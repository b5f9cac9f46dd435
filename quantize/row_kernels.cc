#include "quantize/row_kernels.h"

#include <cstring>

#include "forge/base/simd16.h"
#include "quantize/bitpack.h"
#include "quantize/fp_formats.h"
#include "quantize/groups.h"

namespace forge::quant {
namespace {

using namespace forge::simd;  // NOLINT: the vector vocabulary of this file

FORGE_INLINE V16 Splat(float x) { return V16{} + x; }
FORGE_INLINE U16 SplatU(uint32_t x) { return U16{} + x; }
FORGE_INLINE V16 Abs(V16 v) { return FromBits(Bits(v) & 0x7FFFFFFFu); }
FORGE_INLINE I16 NonFinite(V16 v) { return reinterpret_cast<I16>((Bits(v) & 0x7F800000u) == 0x7F800000u); }
FORGE_INLINE bool Any(I16 m) {
  int any = 0;
  for (int j = 0; j < kLanes; ++j) any |= m[j];
  return any != 0;
}
FORGE_INLINE U16 ToCodes(V16 v) { return reinterpret_cast<U16>(__builtin_convertvector(v, I16)); }

// Lane selects as bit operations (GCC keeps these in vector registers; a ?: on masks may be scalarized).
FORGE_INLINE U16 Mask(I16 m) { return reinterpret_cast<U16>(m); }
FORGE_INLINE U16 SelectU(I16 m, U16 a, U16 b) { return (a & Mask(m)) | (b & ~Mask(m)); }
FORGE_INLINE V16 Select(I16 m, V16 a, V16 b) { return FromBits(SelectU(m, Bits(a), Bits(b))); }

// Ties to even for every float: adding and removing 2^23 is exact below 2^23, and above it every float
// is an integer. Done on the magnitude, the sign put back (a zero result keeps x's sign, as nearbyint).
FORGE_INLINE V16 RoundHalfEven(V16 x) {
  const V16 a = Abs(x), magic = Splat(8388608.0f);
  const V16 r = Select(a < magic, (a + magic) - magic, a);
  return FromBits(Bits(r) | (Bits(x) & 0x80000000u));
}

// Ties away from zero (std::round): on the magnitude, a tie that went to even (down) moves up one. a - t
// is exact because |a - t| <= 0.5.
FORGE_INLINE V16 RoundHalfAway(V16 x) {
  const V16 a = Abs(x), magic = Splat(8388608.0f);
  V16 t = Select(a < magic, (a + magic) - magic, a);
  t += FromBits(Mask(a - t == 0.5f) & 0x3F800000u);  // + 1.0f on the tie lanes
  return FromBits(Bits(t) | (Bits(x) & 0x80000000u));
}

// round_to(bf16) and back for finite values and infinities (and x86's default NaN): round to nearest even.
FORGE_INLINE V16 RoundToBf16(V16 v) {
  const U16 u = Bits(v);
  return FromBits((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
}
FORGE_INLINE V16 RoundToT(DType t, V16 v) { return t == DType::kBF16 ? RoundToBf16(v) : v; }

// fp_formats.h's E4M3Encode: the subnormal grid scaled exactly, normals rounded on the bits (a mantissa
// carry moves into the exponent as it should), 464 and above (and NaN) saturated, the sign copied.
FORGE_INLINE U16 E4M3(V16 x) {
  const U16 u = Bits(x), sign = (u >> 24) & 0x80u, au = u & 0x7FFFFFFFu;
  const V16 a = FromBits(au);
  const U16 sub = ToCodes(RoundHalfEven(a * 512.0f));
  const U16 normal = ((au + 0x7FFFFu + ((au >> 20) & 1u)) >> 20) - 960u;  // ((exp + 7) << 3) | mantissa
  const U16 code = SelectU(a < 0.015625f, sub, normal);
  return sign | SelectU(a < 464.0f, code, SplatU(0x7Eu));
}

// fp_formats.h's E2M1EncodeGpu: the magnitude code is the number of thresholds passed.
FORGE_INLINE U16 E2M1Gpu(V16 x) {
  const V16 a = Abs(x);
  const I16 passed = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
  const U16 code = ((Bits(x) >> 31) << 3) | reinterpret_cast<U16>(-passed);
  return SelectU(x != x, SplatU(0x7u), code);
}

FORGE_INLINE V16 If(I16 m, float c) { return FromBits(Mask(m) & Bits(Splat(c))); }

// MLX CPU's nearest E2M1 entry (distances rounded to t, the first minimum of the table wins), found from
// the two entries around |x| instead of all sixteen: a farther entry is at least 0.5 farther, more than the
// rounding of a distance below 16 can hide, and of +v and -v the one of x's sign is nearer, the positive
// (lower index) winning only for 0. Needs |x| < 2^20 (FpGroupV checks): far out, float distances to
// several entries round to one value and the first of them wins, which the scalar code resolves.
FORGE_INLINE U16 E2M1Nearest(DType t, V16 x) {
  const V16 a = Abs(x);
  const I16 ge05 = a >= 0.5f, ge1 = a >= 1.0f, ge15 = a >= 1.5f, ge2 = a >= 2.0f, ge3 = a >= 3.0f,
            ge4 = a >= 4.0f, ge6 = a >= 6.0f;
  const U16 below = Mask(-(ge05 + ge1 + ge15 + ge2 + ge3 + ge4 + ge6));  // index of the entry <= a
  const V16 lo = If(ge05, 0.5f) + If(ge1, 0.5f) + If(ge15, 0.5f) + If(ge2, 0.5f) + If(ge3, 1.0f) + If(ge4, 1.0f) +
                 If(ge6, 2.0f);
  const V16 hi = lo + (Splat(0.5f) + If(ge2, 0.5f) + If(ge4, 1.0f));
  const I16 up = (RoundToT(t, hi - a) < RoundToT(t, a - lo)) & ~ge6;
  const U16 magnitude = below + (Mask(up) & 1u);
  const U16 negative = ((Bits(x) >> 31) << 3) & ~Mask(magnitude == 0u);
  return magnitude | negative;
}

FORGE_INLINE float MaxLane(V16 v) {
  float m = v[0];
  for (int j = 1; j < kLanes; ++j) m = v[j] > m ? v[j] : m;
  return m;
}
FORGE_INLINE float MinLane(V16 v) {
  float m = v[0];
  for (int j = 1; j < kLanes; ++j) m = v[j] < m ? v[j] : m;
  return m;
}

// One affine group; false when it holds NaN or infinity (the caller redoes it with the scalar code).
FORGE_INLINE bool AffineGroupV(Rules rules, const float* w, int g, int bits, uint32_t* codes, float* scale,
                               float* bias) {
  V16 hi = Load16(w), lo = hi;
  I16 bad = NonFinite(hi);
  for (int i = kLanes; i < g; i += kLanes) {
    const V16 v = Load16(w + i);
    bad |= NonFinite(v);
    hi = Select(v > hi, v, hi);
    lo = Select(v < lo, v, lo);
  }
  if (Any(bad)) return false;
  const bool gpu = rules == Rules::kMlxGpu;
  float h = MaxLane(hi);
  if (gpu && !(h > 0.0f)) h = 0.0f;  // Metal's running maximum starts at 0
  const AffineScale s = AffineScaleOf(rules, h, MinLane(lo), bits);
  const float n = static_cast<float>((1 << bits) - 1);
  for (int i = 0; i < g; i += kLanes) {
    const V16 q = (Load16(w + i) - s.bias) / s.scale;  // a true division, as MLX
    V16 r = gpu ? RoundHalfAway(q) : RoundHalfEven(q);
    r = Select(r >= 0.0f, r, Splat(0.0f));  // NaN too
    r = Select(r > n, Splat(n), r);
    const U16 c = ToCodes(r);
    __builtin_memcpy(codes + i, &c, sizeof c);
  }
  *scale = s.scale;
  *bias = s.bias;
  return true;
}

// One mxfp4 / mxfp8 / nvfp4 group; false (codes possibly half written) when the scalar code must redo it.
FORGE_INLINE bool FpGroupV(QuantMode mode, Rules rules, DType t, const float* w, int g, uint32_t* codes,
                           uint8_t* byte) {
  V16 amax = {};
  I16 bad = {};
  for (int i = 0; i < g; i += kLanes) {
    const V16 v = Load16(w + i);
    bad |= NonFinite(v);
    const V16 a = Abs(v);
    amax = Select(a > amax, a, amax);
  }
  if (Any(bad)) return false;
  const float m = MaxLane(amax);
  const FpScale s = mode == QuantMode::kNvfp4 ? Nvfp4ScaleOf(rules, t, m)
                                              : MxfpScaleOf(rules, t, mode == QuantMode::kMxfp8, m);
  const bool cpu = rules == Rules::kMlxCpu;
  if (cpu && !(s.divisor != 0.0f)) return false;  // w / 0: the scalar code's inf/NaN corner
  const bool nearest = cpu && mode != QuantMode::kMxfp8;
  for (int i = 0; i < g; i += kLanes) {
    const V16 v = Load16(w + i);
    const V16 x = cpu ? RoundToT(t, v / s.divisor) : v * s.multiplier;
    if (nearest && Any(Abs(x) >= 1048576.0f)) return false;
    U16 c;
    if (mode == QuantMode::kMxfp8) {
      c = E4M3(x);
    } else if (!cpu) {
      c = E2M1Gpu(x);
    } else {
      c = E2M1Nearest(mode == QuantMode::kNvfp4 ? DType::kF32 : t, x);
    }
    __builtin_memcpy(codes + i, &c, sizeof c);
  }
  *byte = s.byte;
  return true;
}

// groups.h for group gi of a row.
void ScalarGroup(const QuantParams& p, Rules rules, DType t, const float* wg, uint32_t* cg, const RowScales& out,
                 uint64_t gi) {
  switch (p.mode) {
    case QuantMode::kAffine: AffineGroup(rules, wg, p.group_size, p.bits, cg, &out.scale[gi], &out.bias[gi]); break;
    case QuantMode::kMxfp4:
    case QuantMode::kMxfp8: out.byte[gi] = MxfpGroup(rules, t, p.mode == QuantMode::kMxfp8, wg, cg); break;
    case QuantMode::kNvfp4: out.byte[gi] = Nvfp4Group(rules, t, wg, cg); break;
  }
}

// `vector`: try each group with the vector code first (it declines groups holding NaN or infinity).
FORGE_HOT void QuantizeRowGroups(const QuantParams& p, Rules rules, DType t, const float* w, uint64_t k,
                                 uint32_t* codes, const RowScales& out, bool vector) {
  const uint64_t g = static_cast<uint64_t>(p.group_size);
  for (uint64_t gi = 0; gi < k / g; ++gi) {
    const float* wg = w + gi * g;
    uint32_t* cg = codes + gi * g;
    const bool done = vector && (p.mode == QuantMode::kAffine
                                     ? AffineGroupV(rules, wg, p.group_size, p.bits, cg, &out.scale[gi], &out.bias[gi])
                                     : FpGroupV(p.mode, rules, t, wg, p.group_size, cg, &out.byte[gi]));
    if (!done) ScalarGroup(p, rules, t, wg, cg, out, gi);
  }
}

}  // namespace

void QuantizeRowF32(const QuantParams& p, Rules rules, DType t, const float* w, uint64_t k, uint32_t* codes,
                    const RowScales& out) {
  const bool vector_ok = p.group_size % kLanes == 0 &&
                         (p.mode == QuantMode::kAffine || rules == Rules::kMlxGpu || t != DType::kF16);
  QuantizeRowGroups(p, rules, t, w, k, codes, out, vector_ok);
}

namespace {

// 32 / Bits codes per word, the first in the low bits; a fixed count the compiler unrolls and vectorizes.
template <int Bits>
void PackWords(const uint32_t* codes, uint64_t k, uint8_t* row) {
  constexpr int kPer = 32 / Bits;
  for (uint64_t wi = 0; wi < k / kPer; ++wi) {
    uint32_t word = 0;
    for (int j = 0; j < kPer; ++j) word |= codes[wi * kPer + j] << (j * Bits);
    std::memcpy(row + 4 * wi, &word, 4);
  }
}

}  // namespace

void PackRow(const uint32_t* codes, uint64_t k, int bits, uint8_t* row) {
  switch (bits) {
    case 8:
      for (uint64_t i = 0; i < k; ++i) row[i] = static_cast<uint8_t>(codes[i]);
      return;
    case 4: PackWords<4>(codes, k, row); return;
    case 2: PackWords<2>(codes, k, row); return;
    default:
      std::memset(row, 0, k * static_cast<uint64_t>(bits) / 8);
      for (uint64_t i = 0; i < k; ++i) PackCode(row, i, bits, codes[i]);
  }
}

}  // namespace forge::quant
