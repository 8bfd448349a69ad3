// Every way SafetensorsFile::Open rejects a file, and that each error names the file, the
// tensor and the JSON key involved.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/safetensors.h"
#include "tests/io/io_test_util.h"

namespace triad::io {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::SafetensorsBytes;
using testing::TempDir;
using testing::WriteBytes;

// Opens `bytes` written to a scratch file; returns the status and the file's path.
struct OpenResult {
  absl::Status status;
  std::string path;
};

OpenResult OpenBytes(const TempDir& dir, const std::string& bytes) {
  const std::string path = dir.File("model.safetensors");
  WriteBytes(path, bytes);
  return {SafetensorsFile::Open(path).status(), path};
}

TEST(SafetensorsErrorsTest, MissingFileIsNotFound) {
  TempDir dir;
  const std::string path = dir.File("absent.safetensors");
  absl::Status status = SafetensorsFile::Open(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(path));
}

TEST(SafetensorsErrorsTest, DirectoryIsRejected) {
  TempDir dir;
  absl::Status status = SafetensorsFile::Open(dir.path()).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(dir.path()));
}

TEST(SafetensorsErrorsTest, FileShorterThanSizeField) {
  TempDir dir;
  for (const std::string bytes : {"", "\x02\x00\x00"}) {
    OpenResult result = OpenBytes(dir, bytes);
    EXPECT_EQ(result.status.code(), absl::StatusCode::kDataLoss) << result.status;
    EXPECT_THAT(result.status.message(), AllOf(HasSubstr(result.path), HasSubstr("too short")));
  }
}

TEST(SafetensorsErrorsTest, HeaderSizeLargerThanFile) {
  TempDir dir;
  OpenResult result = OpenBytes(dir, SafetensorsBytes("{}", 0, /*declared_header_size=*/1000));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status.message(), AllOf(HasSubstr(result.path), HasSubstr("1000")));
}

TEST(SafetensorsErrorsTest, HeaderSizeAboveLimit) {
  TempDir dir;
  OpenResult result = OpenBytes(dir, SafetensorsBytes("{}", 0, uint64_t{1} << 62));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status.message(), AllOf(HasSubstr(result.path), HasSubstr("limit")));
}

// A header (and data section size) that Open must reject, and what the message must name.
struct BadHeader {
  std::string test_name;
  std::string header;
  size_t data_size;
  absl::StatusCode code;
  std::vector<std::string> must_name;  // besides the file path
};

class BadHeaderTest : public ::testing::TestWithParam<BadHeader> {};

TEST_P(BadHeaderTest, IsRejectedWithContext) {
  const BadHeader& param = GetParam();
  TempDir dir;
  OpenResult result = OpenBytes(dir, SafetensorsBytes(param.header, param.data_size));
  EXPECT_EQ(result.status.code(), param.code) << result.status;
  EXPECT_THAT(result.status.message(), HasSubstr(result.path));
  for (const std::string& part : param.must_name) {
    EXPECT_THAT(result.status.message(), HasSubstr(part));
  }
}

// Entry for tensor `name`: F32 of `shape` at [begin, end).
std::string Entry(const std::string& name, const std::string& shape, int begin, int end,
                  const std::string& dtype = "F32") {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

const BadHeader kBadHeaders[] = {
    {"NotJson", "{\"w\":", 0, kInvalid, {"not valid JSON"}},
    {"NotJsonBinary", std::string("\xff\xfe\x00\x01", 4), 0, kInvalid, {"JSON"}},
    {"NotAnObject", "[1,2]", 0, kInvalid, {"must be a JSON object", "array"}},
    {"UnknownDType",
     "{" + Entry("w", "[1]", 0, 1, "F8_E4M3") + "}",
     1,
     kInvalid,
     {"'w'", "'dtype'", "F8_E4M3"}},
    {"DTypeNotString",
     "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}",
     4,
     kInvalid,
     {"'w'", "'dtype'"}},
    {"ShapeTimesDTypeMismatch",
     "{" + Entry("w", "[2]", 0, 4) + "}",
     4,
     kInvalid,
     {"'w'", "'data_offsets'", "needs 8"}},
    {"ShapeOverflows",
     "{" + Entry("w", "[4294967296,4294967296]", 0, 4) + "}",
     4,
     kInvalid,
     {"'w'", "'shape'", "overflow"}},
    {"NegativeDim", "{" + Entry("w", "[-1]", 0, 4) + "}", 4, kInvalid, {"'w'", "'shape'", "-1"}},
    {"FractionalDim", "{" + Entry("w", "[1.5]", 0, 4) + "}", 4, kInvalid, {"'w'", "'shape'"}},
    {"StringDim", "{" + Entry("w", "[\"1\"]", 0, 4) + "}", 4, kInvalid, {"'w'", "'shape'"}},
    {"ShapeNotArray", "{" + Entry("w", "4", 0, 16) + "}", 16, kInvalid, {"'w'", "'shape'"}},
    {"OffsetsPastData",
     "{" + Entry("w", "[2]", 0, 8) + "}",
     4,
     absl::StatusCode::kDataLoss,
     {"'w'", "'data_offsets'", "past the data section"}},
    {"OffsetsReversed",
     "{" + Entry("w", "[0]", 4, 0) + "}",
     4,
     kInvalid,
     {"'w'", "'data_offsets'", "after end"}},
    {"OffsetsNotPair",
     "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}",
     1,
     kInvalid,
     {"'w'", "'data_offsets'"}},
    {"NegativeOffset",
     "{" + Entry("w", "[1]", -4, 0) + "}",
     4,
     kInvalid,
     {"'w'", "'data_offsets'"}},
    {"Overlap",
     "{" + Entry("a", "[2]", 0, 8) + "," + Entry("b", "[2]", 4, 12) + "}",
     12,
     kInvalid,
     {"'a'", "'b'", "overlaps"}},
    {"GapBetweenTensors",
     "{" + Entry("a", "[1]", 0, 4) + "," + Entry("b", "[1]", 8, 12) + "}",
     12,
     kInvalid,
     {"'b'", "gap", "[4, 8)"}},
    {"GapAtStart", "{" + Entry("a", "[1]", 4, 8) + "}", 8, kInvalid, {"'a'", "[0, 4)"}},
    {"GapAtEnd", "{" + Entry("a", "[1]", 0, 4) + "}", 8, kInvalid, {"'a'", "[4, 8)"}},
    {"DataWithoutTensors", "{}", 4, kInvalid, {"[0, 4)"}},
    {"MetadataNotObject", "{\"__metadata__\":[1]}", 0, kInvalid, {"'__metadata__'", "array"}},
    {"MetadataValueNotString",
     "{\"__metadata__\":{\"format\":1}}",
     0,
     kInvalid,
     {"'__metadata__'", "'format'"}},
    {"EntryNotObject", "{\"w\":[1]}", 0, kInvalid, {"'w'", "must be an object"}},
    {"MissingKey",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}",
     4,
     kInvalid,
     {"'w'", "'data_offsets'", "missing"}},
    {"UnexpectedKey",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"strides\":[1]}}",
     4,
     kInvalid,
     {"'w'", "'strides'"}},
    {"DuplicateTensor",
     "{" + Entry("w", "[1]", 0, 4) + "," + Entry("w", "[1]", 4, 8) + "}",
     8,
     kInvalid,
     {"'w'", "twice"}},
    {"DuplicateKeyInEntry",
     "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     4,
     kInvalid,
     {"'dtype'", "twice"}},
    {"EmptyName", "{" + Entry("", "[1]", 0, 4) + "}", 4, kInvalid, {"empty name"}},
};

INSTANTIATE_TEST_SUITE_P(AllRules, BadHeaderTest, ::testing::ValuesIn(kBadHeaders),
                         [](const ::testing::TestParamInfo<BadHeader>& info) {
                           return info.param.test_name;
                         });

}  // namespace
}  // namespace triad::io
