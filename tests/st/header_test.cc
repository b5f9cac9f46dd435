// One case per rule of the reference safetensors reader (STYLE.md §8), built from hand-written bytes in
// the manner of the Rust crate's unit tests; every rejection names the rule.
#include "forge/st/header.h"

#include <gtest/gtest.h>

#include "forge/st/reader.h"
#include "tests/st/test_files.h"

namespace forge::st {
namespace {
using testing::SafetensorsBytes;

Result<Header> Parse(const std::string& bytes) {
  return ParseHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size());
}

void ExpectRejected(const std::string& bytes, const std::string& rule) {
  auto r = Parse(bytes);
  ASSERT_FALSE(r.ok()) << "accepted, expected " << rule;
  EXPECT_NE(r.status().ToString().find(rule), std::string::npos) << r.status().ToString();
  EXPECT_EQ(r.status().code(), ExitCode::kInvalidInput);
  EXPECT_EQ(r.status().ToString().find('\n'), std::string::npos);  // one line
}

const char* kOne = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

TEST(Header, ValidFileParses) {
  auto r = Parse(SafetensorsBytes(kOne, 16));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->tensors.size(), 1u);
  EXPECT_EQ(r->tensors[0].shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(r->Find("a")->nbytes(), 16u);
}

TEST(Header, TooSmall) { ExpectRejected(std::string("\x01\x00\x00", 3), "HeaderTooSmall"); }

TEST(Header, TooLargeIsRejectedBeforeReading) {
  std::string b(8, '\0');
  uint64_t n = kMaxHeaderSize + 1;
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  ExpectRejected(b + "{}", "HeaderTooLarge");
}

TEST(Header, LengthPastEndOfFile) {
  std::string b = SafetensorsBytes(kOne, 16);
  ExpectRejected(b.substr(0, 20), "InvalidHeaderLength");
}

TEST(Header, NonUtf8) { ExpectRejected(SafetensorsBytes("{\"\xff\":1}", 0), "InvalidHeader"); }
TEST(Header, OverlongUtf8) { ExpectRejected(SafetensorsBytes("{\"\xc0\xaf\":{}}", 0), "InvalidHeader"); }
TEST(Header, NotJson) { ExpectRejected(SafetensorsBytes("{\"a\":", 0), "InvalidHeaderDeserialization"); }
TEST(Header, NotAnObject) { ExpectRejected(SafetensorsBytes("[1,2]", 0), "InvalidHeaderDeserialization"); }

TEST(Header, DuplicateTensorName) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                  R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2),
                 "DuplicateKey");
}
TEST(Header, DuplicateMetadataKey) {
  ExpectRejected(SafetensorsBytes(R"({"__metadata__":{"format":"pt","format":"mlx"}})", 0), "DuplicateKey");
}
TEST(Header, MetadataValueNotString) {
  ExpectRejected(SafetensorsBytes(R"({"__metadata__":{"format":1}})", 0), "InvalidHeaderDeserialization");
}
TEST(Header, UnknownDtype) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}})", 1), "UnknownDtype");
}
TEST(Header, NegativeDimension) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", 1),
                 "InvalidHeaderDeserialization");
}
TEST(Header, FloatDimension) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})", 1),
                 "InvalidHeaderDeserialization");
}
TEST(Header, OffsetsNotAPair) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 1),
                 "InvalidHeaderDeserialization");
}
TEST(Header, EndBeforeBegin) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", 1), "InvalidOffset");
}
TEST(Header, ShapeOverflow) {
  ExpectRejected(SafetensorsBytes(
                     R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,8]}})", 8),
                 "ValidationOverflow");
}
TEST(Header, SizeDisagreesWithShape) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
                 "TensorInvalidInfo");
}
TEST(Header, SubByteOddCount) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2), "MisalignedSlice");
}
TEST(Header, Overlap) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6),
                 "InvalidOffset");
}
TEST(Header, Gap) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"U8","shape":[4],"data_offsets":[5,9]}})", 9),
                 "InvalidOffset");
}
TEST(Header, FirstTensorNotAtZero) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", 8), "InvalidOffset");
}
TEST(Header, JsonAttackManyNamesOneRange) {
  ExpectRejected(SafetensorsBytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 4),
                 "InvalidOffset");
}
TEST(Header, TrailingBytes) { ExpectRejected(SafetensorsBytes(kOne, 17), "MetadataIncompleteBuffer"); }
TEST(Header, MissingBytes) { ExpectRejected(SafetensorsBytes(kOne, 15), "MetadataIncompleteBuffer"); }

TEST(Header, AcceptsWhitespacePaddingScalarsEmptyTensorsAndUnknownFields) {
  auto r = Parse(SafetensorsBytes(
      R"(  {"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"BF16","shape":[0,3],"data_offsets":[4,4],"extra":1}}    )",
      4));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Find("s")->numel(), 1u);
  EXPECT_EQ(r->Find("e")->nbytes(), 0u);
  ASSERT_EQ(r->unknown_fields.size(), 1u);
  EXPECT_EQ(r->unknown_fields[0], "e: extra");
}

TEST(Header, EmptyHeaderWithNoData) {
  auto r = Parse(SafetensorsBytes("{}", 0));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->tensors.empty());
}

TEST(Reader, ErrorsNameTheFile) {
  testing::TempDir t;
  testing::WriteFile(t.Sub("bad.safetensors"), SafetensorsBytes(kOne, 15));
  auto f = SafetensorsFile::Open(t.Sub("bad.safetensors"));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().file(), t.Sub("bad.safetensors"));
}

}  // namespace
}  // namespace forge::st
