#include "quantize/row_kernels.h"

#include <atomic>
#include <cstring>

#include "forge/base/simd16.h"
#include "quantize/bitpack.h"
#include "quantize/fp_formats.h"
#include "quantize/groups.h"

namespace forge::quant {
namespace {

// The vector code, for L lanes of 32 bits: 16 in the AVX-512 build, 8 in the AVX2 build, 4 elsewhere
// (SSE2, NEON). Each build gets vectors its registers hold: GCC 12 turns a comparison of vectors wider
// than the target's into one scalar compare per lane (16-lane code in an AVX2 clone ran at 234 MB/s here,
// a sixth of the AVX-512 build). Every operation is lane-wise, so the lane count changes no result; the
// two reductions (a group's largest and smallest element) are exact, and where their result is a zero,
// whose sign the order of the lanes would decide, the group goes to the scalar code.
template <int L>
struct VectorTypes;  // (GCC ignores a vector_size that depends on a template parameter: one per width)
#define FORGE_VECTOR_TYPES(L)                                                                  \
  template <>                                                                                  \
  struct VectorTypes<L> {                                                                      \
    typedef float F __attribute__((vector_size(4 * L)));                                       \
    typedef uint32_t U __attribute__((vector_size(4 * L)));                                    \
    typedef int32_t I __attribute__((vector_size(4 * L))); /* comparisons: -1 true, 0 false */ \
  };
FORGE_VECTOR_TYPES(4)
FORGE_VECTOR_TYPES(8)
FORGE_VECTOR_TYPES(16)
#undef FORGE_VECTOR_TYPES

template <int L>
struct Lanes {
  using F = typename VectorTypes<L>::F;
  using U = typename VectorTypes<L>::U;
  using I = typename VectorTypes<L>::I;

  static FORGE_INLINE F Load(const float* p) {
    F v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
  }
  static FORGE_INLINE U Bits(F v) { return __builtin_bit_cast(U, v); }
  static FORGE_INLINE F FromBits(U u) { return __builtin_bit_cast(F, u); }
  static FORGE_INLINE F Splat(float x) { return F{} + x; }
  static FORGE_INLINE U SplatU(uint32_t x) { return U{} + x; }
  static FORGE_INLINE F Abs(F v) { return FromBits(Bits(v) & 0x7FFFFFFFu); }
  static FORGE_INLINE I NonFinite(F v) { return reinterpret_cast<I>((Bits(v) & 0x7F800000u) == 0x7F800000u); }
  static FORGE_INLINE bool Any(I m) {
    int any = 0;
    for (int j = 0; j < L; ++j) any |= m[j];
    return any != 0;
  }
  static FORGE_INLINE U ToCodes(F v) { return reinterpret_cast<U>(__builtin_convertvector(v, I)); }

  // Lane selects as bit operations (GCC keeps these in vector registers; a ?: on masks may be scalarized).
  static FORGE_INLINE U Mask(I m) { return reinterpret_cast<U>(m); }
  static FORGE_INLINE U SelectU(I m, U a, U b) { return (a & Mask(m)) | (b & ~Mask(m)); }
  static FORGE_INLINE F Select(I m, F a, F b) { return FromBits(SelectU(m, Bits(a), Bits(b))); }

  // Ties to even for every float: adding and removing 2^23 is exact below 2^23, and above it every float
  // is an integer. Done on the magnitude, the sign put back (a zero result keeps x's sign, as nearbyint).
  static FORGE_INLINE F RoundHalfEven(F x) {
    const F a = Abs(x), magic = Splat(8388608.0f);
    const F r = Select(a < magic, (a + magic) - magic, a);
    return FromBits(Bits(r) | (Bits(x) & 0x80000000u));
  }

  // Ties away from zero (std::round): on the magnitude, a tie that went to even (down) moves up one. a - t
  // is exact because |a - t| <= 0.5.
  static FORGE_INLINE F RoundHalfAway(F x) {
    const F a = Abs(x), magic = Splat(8388608.0f);
    F t = Select(a < magic, (a + magic) - magic, a);
    t += FromBits(Mask(a - t == 0.5f) & 0x3F800000u);  // + 1.0f on the tie lanes
    return FromBits(Bits(t) | (Bits(x) & 0x80000000u));
  }

  // round_to(bf16) and back for finite values and infinities (and x86's default NaN): round to nearest even.
  static FORGE_INLINE F RoundToBf16(F v) {
    const U u = Bits(v);
    return FromBits((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
  }
  static FORGE_INLINE F RoundToT(DType t, F v) { return t == DType::kBF16 ? RoundToBf16(v) : v; }

  // fp_formats.h's E4M3Encode: the subnormal grid scaled exactly, normals rounded on the bits (a mantissa
  // carry moves into the exponent as it should), 464 and above (and NaN) saturated, the sign copied.
  static FORGE_INLINE U E4M3(F x) {
    const U u = Bits(x), sign = (u >> 24) & 0x80u, au = u & 0x7FFFFFFFu;
    const F a = FromBits(au);
    const U sub = ToCodes(RoundHalfEven(a * 512.0f));
    const U normal = ((au + 0x7FFFFu + ((au >> 20) & 1u)) >> 20) - 960u;  // ((exp + 7) << 3) | mantissa
    const U code = SelectU(a < 0.015625f, sub, normal);
    return sign | SelectU(a < 464.0f, code, SplatU(0x7Eu));
  }

  // fp_formats.h's E2M1EncodeGpu: the magnitude code is the number of thresholds passed.
  static FORGE_INLINE U E2M1Gpu(F x) {
    const F a = Abs(x);
    const I passed = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
    const U code = ((Bits(x) >> 31) << 3) | reinterpret_cast<U>(-passed);
    return SelectU(x != x, SplatU(0x7u), code);
  }

  static FORGE_INLINE F If(I m, float c) { return FromBits(Mask(m) & Bits(Splat(c))); }

  // MLX CPU's nearest E2M1 entry (distances rounded to t, the first minimum of the table wins), found from
  // the two entries around |x| instead of all sixteen: a farther entry is at least 0.5 farther, more than the
  // rounding of a distance below 16 can hide, and of +v and -v the one of x's sign is nearer, the positive
  // (lower index) winning only for 0. Needs |x| < 2^20 (FpGroupV checks): far out, float distances to
  // several entries round to one value and the first of them wins, which the scalar code resolves.
  static FORGE_INLINE U E2M1Nearest(DType t, F x) {
    const F a = Abs(x);
    const I ge05 = a >= 0.5f, ge1 = a >= 1.0f, ge15 = a >= 1.5f, ge2 = a >= 2.0f, ge3 = a >= 3.0f,
              ge4 = a >= 4.0f, ge6 = a >= 6.0f;
    const U below = Mask(-(ge05 + ge1 + ge15 + ge2 + ge3 + ge4 + ge6));  // index of the entry <= a
    const F lo = If(ge05, 0.5f) + If(ge1, 0.5f) + If(ge15, 0.5f) + If(ge2, 0.5f) + If(ge3, 1.0f) + If(ge4, 1.0f) +
                   If(ge6, 2.0f);
    const F hi = lo + (Splat(0.5f) + If(ge2, 0.5f) + If(ge4, 1.0f));
    const I up = (RoundToT(t, hi - a) < RoundToT(t, a - lo)) & ~ge6;
    const U magnitude = below + (Mask(up) & 1u);
    const U negative = ((Bits(x) >> 31) << 3) & ~Mask(magnitude == 0u);
    return magnitude | negative;
  }

  static FORGE_INLINE float MaxLane(F v) {
    float m = v[0];
    for (int j = 1; j < L; ++j) m = v[j] > m ? v[j] : m;
    return m;
  }
  static FORGE_INLINE float MinLane(F v) {
    float m = v[0];
    for (int j = 1; j < L; ++j) m = v[j] < m ? v[j] : m;
    return m;
  }

  // One affine group; false when it holds NaN or infinity (the caller redoes it with the scalar code).
  static FORGE_INLINE bool AffineGroupV(Rules rules, const float* w, int g, int bits, uint32_t* codes, float* scale,
                                 float* bias) {
    F hi = Load(w), lo = hi;
    I bad = NonFinite(hi);
    for (int i = L; i < g; i += L) {
      const F v = Load(w + i);
      bad |= NonFinite(v);
      hi = Select(v > hi, v, hi);
      lo = Select(v < lo, v, lo);
    }
    if (Any(bad)) return false;
    const bool gpu = rules == Rules::kMlxGpu;
    float h = MaxLane(hi);
    const float l = MinLane(lo);
    if (h == 0.0f || l == 0.0f) return false;  // which zero: the scalar code's order decides
    if (gpu && !(h > 0.0f)) h = 0.0f;         // Metal's running maximum starts at 0
    const AffineScale s = AffineScaleOf(rules, h, l, bits);
    const float n = static_cast<float>((1 << bits) - 1);
    for (int i = 0; i < g; i += L) {
      const F q = (Load(w + i) - s.bias) / s.scale;  // a true division, as MLX
      F r = gpu ? RoundHalfAway(q) : RoundHalfEven(q);
      r = Select(r >= 0.0f, r, Splat(0.0f));  // NaN too
      r = Select(r > n, Splat(n), r);
      const U c = ToCodes(r);
      __builtin_memcpy(codes + i, &c, sizeof c);
    }
    *scale = s.scale;
    *bias = s.bias;
    return true;
  }

  // One mxfp4 / mxfp8 / nvfp4 group; false (codes possibly half written) when the scalar code must redo it.
  static FORGE_INLINE bool FpGroupV(QuantMode mode, Rules rules, DType t, const float* w, int g, uint32_t* codes,
                             uint8_t* byte) {
    F amax = {};
    I bad = {};
    for (int i = 0; i < g; i += L) {
      const F v = Load(w + i);
      bad |= NonFinite(v);
      const F a = Abs(v);
      amax = Select(a > amax, a, amax);
    }
    if (Any(bad)) return false;
    const float m = MaxLane(amax);
    const FpScale s = mode == QuantMode::kNvfp4 ? Nvfp4ScaleOf(rules, t, m)
                                                : MxfpScaleOf(rules, t, mode == QuantMode::kMxfp8, m);
    const bool cpu = rules == Rules::kMlxCpu;
    if (cpu && !(s.divisor != 0.0f)) return false;  // w / 0: the scalar code's inf/NaN corner
    const bool nearest = cpu && mode != QuantMode::kMxfp8;
    for (int i = 0; i < g; i += L) {
      const F v = Load(w + i);
      const F x = cpu ? RoundToT(t, v / s.divisor) : v * s.multiplier;
      if (nearest && Any(Abs(x) >= 1048576.0f)) return false;
      U c;
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
};

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
template <int L>
FORGE_INLINE void QuantizeRowGroups(const QuantParams& p, Rules rules, DType t, const float* w, uint64_t k,
                                    uint32_t* codes, const RowScales& out, bool vector) {
  const uint64_t g = static_cast<uint64_t>(p.group_size);
  for (uint64_t gi = 0; gi < k / g; ++gi) {
    const float* wg = w + gi * g;
    uint32_t* cg = codes + gi * g;
    const bool done =
        vector && (p.mode == QuantMode::kAffine
                       ? Lanes<L>::AffineGroupV(rules, wg, p.group_size, p.bits, cg, &out.scale[gi], &out.bias[gi])
                       : Lanes<L>::FpGroupV(p.mode, rules, t, wg, p.group_size, cg, &out.byte[gi]));
    if (!done) ScalarGroup(p, rules, t, wg, cg, out, gi);
  }
}

using RowGroupsFn = void (*)(const QuantParams&, Rules, DType, const float*, uint64_t, uint32_t*, const RowScales&,
                             bool);

void RowGroups4(const QuantParams& p, Rules rules, DType t, const float* w, uint64_t k, uint32_t* codes,
                const RowScales& out, bool vector) {
  QuantizeRowGroups<4>(p, rules, t, w, k, codes, out, vector);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) void RowGroups8(const QuantParams& p, Rules rules, DType t, const float* w,
                                                uint64_t k, uint32_t* codes, const RowScales& out, bool vector) {
  QuantizeRowGroups<8>(p, rules, t, w, k, codes, out, vector);
}
__attribute__((target("avx512f"))) void RowGroups16(const QuantParams& p, Rules rules, DType t, const float* w,
                                                    uint64_t k, uint32_t* codes, const RowScales& out, bool vector) {
  QuantizeRowGroups<16>(p, rules, t, w, k, codes, out, vector);
}
#endif

// The build for `lanes` (0: the widest this CPU runs), or nullptr where the CPU cannot run it.
RowGroupsFn RowGroupsFor(int lanes) {
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  if (lanes == 0) lanes = avx512 ? 16 : avx2 ? 8 : 4;
  if (lanes == 16) return avx512 ? RowGroups16 : nullptr;
  if (lanes == 8) return avx2 ? RowGroups8 : nullptr;
#else
  if (lanes == 0) lanes = 4;
#endif
  return lanes == 4 ? RowGroups4 : nullptr;
}

std::atomic<RowGroupsFn> g_row_groups{nullptr};

}  // namespace

bool SetQuantizeLanes(int lanes) {
  const RowGroupsFn fn = RowGroupsFor(lanes);
  if (fn != nullptr) g_row_groups.store(fn);
  return fn != nullptr;
}

void QuantizeRowF32(const QuantParams& p, Rules rules, DType t, const float* w, uint64_t k, uint32_t* codes,
                    const RowScales& out) {
  RowGroupsFn row_groups = g_row_groups.load(std::memory_order_relaxed);
  if (row_groups == nullptr) {  // first call: resolve the CPU's width once, not per row
    row_groups = RowGroupsFor(0);
    g_row_groups.store(row_groups);
  }
  const bool vector_ok = p.group_size % 16 == 0 &&
                         (p.mode == QuantMode::kAffine || rules == Rules::kMlxGpu || t != DType::kF16);
  row_groups(p, rules, t, w, k, codes, out, vector_ok);
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
