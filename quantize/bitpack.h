// MLX's packing of b-bit codes (docs MLX_QUANT_FORMATS.md §2): each row is one little-endian bit stream,
// code i at stream bits [i*b, i*b + b), stream bit n = bit n%32 of uint32 word n/32. 3-, 5- and 6-bit codes
// straddle word boundaries. Rows start on a word boundary (a row holds a whole number of groups).
// Byte pointers with memcpy loads: packed tensors inside a mapped safetensors file need not be aligned.
#pragma once

#include <cstdint>
#include <cstring>

namespace forge::quant {

inline uint32_t LoadWord(const uint8_t* p, uint64_t w) {
  uint32_t v;
  std::memcpy(&v, p + 4 * w, 4);
  return v;
}
inline void OrWord(uint8_t* p, uint64_t w, uint32_t bits) {
  uint32_t v;
  std::memcpy(&v, p + 4 * w, 4);
  v |= bits;
  std::memcpy(p + 4 * w, &v, 4);
}

// `row` must be zeroed before the first code is packed into it.
inline void PackCode(uint8_t* row, uint64_t i, int bits, uint32_t code) {
  const uint64_t bit = i * static_cast<uint64_t>(bits);
  const uint64_t w = bit >> 5;
  const int shift = static_cast<int>(bit & 31);
  OrWord(row, w, code << shift);
  if (shift + bits > 32) OrWord(row, w + 1, code >> (32 - shift));
}

inline uint32_t UnpackCode(const uint8_t* row, uint64_t i, int bits) {
  const uint64_t bit = i * static_cast<uint64_t>(bits);
  const uint64_t w = bit >> 5;
  const int shift = static_cast<int>(bit & 31);
  uint64_t v = LoadWord(row, w) >> shift;
  if (shift + bits > 32) v |= static_cast<uint64_t>(LoadWord(row, w + 1)) << (32 - shift);
  return static_cast<uint32_t>(v & ((1u << bits) - 1u));
}

}  // namespace forge::quant
