// The fast DequantizeRows (quantize/dequantize_rows.cc) against the element-by-element reference it must
// equal byte for byte: every mode, bit width and group size MLX allows, every scales and output dtype, on
// random codes with scales covering every byte value (E8M0 255 = infinity, E4M3 NaN) and random affine
// scales/biases, zeros and infinities among them. The reference itself is held to the real MLX library by
// vectors_test.cc.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "forge/base/float_access.h"
#include "quantize/codec.h"

namespace forge::quant {
namespace {

struct Case {
  QuantMode mode;
  int bits, group;
};

TEST(DequantizeRows, EqualsTheReferenceByteForByte) {
  std::vector<Case> cases;
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int group : {32, 64, 128}) cases.push_back({QuantMode::kAffine, bits, group});
  cases.push_back({QuantMode::kMxfp4, 4, 32});
  cases.push_back({QuantMode::kMxfp8, 8, 32});
  cases.push_back({QuantMode::kNvfp4, 4, 16});
  std::mt19937_64 rng(15);
  const uint64_t rows = 7, k = 256;
  int compared = 0;
  for (const Case& c : cases) {
    QuantParams p;
    p.mode = c.mode;
    p.bits = c.bits;
    p.group_size = c.group;
    const uint64_t groups = rows * (k / c.group);
    std::vector<uint8_t> packed(rows * k * c.bits / 8);
    for (auto& b : packed) b = static_cast<uint8_t>(rng());
    for (DType sdt : c.mode == QuantMode::kAffine ? std::vector<DType>{DType::kBF16, DType::kF16, DType::kF32}
                                                  : std::vector<DType>{DType::kU8}) {
      const uint64_t es = c.mode == QuantMode::kAffine ? DTypeBits(sdt) / 8 : 1;
      std::vector<uint8_t> scales(groups * es), biases(groups * es);
      if (c.mode == QuantMode::kAffine) {
        std::normal_distribution<float> n(0.0f, 0.05f);
        for (uint64_t i = 0; i < groups; ++i) {
          float s = n(rng), b = n(rng) * 10;
          if (i % 17 == 3) s = 0;
          if (i % 29 == 5) b = INFINITY;
          if (i % 23 == 7) s = NAN;
          if (i % 31 == 11) s = -INFINITY;  // times code 0: NaN
          StoreFromF32(sdt, scales.data(), i, s);
          StoreFromF32(sdt, biases.data(), i, b);
        }
      } else {
        for (uint64_t i = 0; i < groups; ++i)
          scales[i] = static_cast<uint8_t>(i * 37 + rng() % 7);  // all bytes
      }
      for (DType out : {DType::kBF16, DType::kF16, DType::kF32}) {
        const uint64_t ob = DTypeBits(out) / 8;
        std::vector<uint8_t> fast(rows * k * ob, 0xAA), ref(rows * k * ob, 0x55);
        // Unaligned output, as a piece of a larger buffer can be.
        std::vector<uint8_t> shifted(rows * k * ob + 1);
        DequantizeRows(p, sdt, packed.data(), scales.data(), biases.data(), rows, k, out, fast.data());
        DequantizeRows(p, sdt, packed.data(), scales.data(), biases.data(), rows, k, out, shifted.data() + 1);
        DequantizeRowsReference(p, sdt, packed.data(), scales.data(), biases.data(), rows, k, out,
                                ref.data());
        EXPECT_EQ(0, std::memcmp(fast.data(), ref.data(), ref.size()))
            << QuantModeName(c.mode) << " bits " << c.bits << " group " << c.group << " scales "
            << DTypeName(sdt) << " out " << DTypeName(out);
        EXPECT_EQ(0, std::memcmp(shifted.data() + 1, ref.data(), ref.size()));
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 18 * 3 * 3 + 3 * 3);
}

}  // namespace
}  // namespace forge::quant
