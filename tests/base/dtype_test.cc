#include "forge/base/dtype.h"

#include <gtest/gtest.h>

namespace forge {
namespace {

// The safetensors Rust enum, in order, with bit sizes (STYLE.md §8.4).
const std::vector<std::pair<std::string, int>> kSpec = {
    {"BOOL", 8}, {"F4", 4}, {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8}, {"I8", 8}, {"F8_E5M2", 8},
    {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16}, {"U16", 16},
    {"F16", 16}, {"BF16", 16}, {"I32", 32}, {"U32", 32}, {"F32", 32}, {"C64", 64}, {"F64", 64},
    {"I64", 64}, {"U64", 64}};

TEST(DType, NamesBitsAndOrderFollowTheReference) {
  ASSERT_EQ(kSpec.size(), static_cast<size_t>(kDTypeCount));
  for (size_t i = 0; i < kSpec.size(); ++i) {
    auto d = ParseDType(kSpec[i].first);
    ASSERT_TRUE(d.has_value()) << kSpec[i].first;
    EXPECT_EQ(static_cast<size_t>(*d), i);
    EXPECT_EQ(DTypeBits(*d), kSpec[i].second);
    EXPECT_EQ(DTypeName(*d), kSpec[i].first);
  }
}

TEST(DType, ParsingIsExactAndCaseSensitive) {
  EXPECT_FALSE(ParseDType("bf16").has_value());
  EXPECT_FALSE(ParseDType("F8").has_value());
  EXPECT_FALSE(ParseDType("").has_value());
  EXPECT_TRUE(IsFloat(DType::kBF16));
  EXPECT_FALSE(IsFloat(DType::kU32));
}

}  // namespace
}  // namespace forge
