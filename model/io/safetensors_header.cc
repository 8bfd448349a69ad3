#include "model/io/safetensors_header.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/io/json_util.h"
#include "model/status_macros.h"

namespace triad::io {
namespace {

using nlohmann::json;

constexpr char kMetadataKey[] = "__metadata__";
constexpr char kDTypeKey[] = "dtype";
constexpr char kShapeKey[] = "shape";
constexpr char kOffsetsKey[] = "data_offsets";

// "<path>: tensor '<name>': key '<key>': <what>", leaving out the parts that are empty.
std::string Where(absl::string_view path, absl::string_view tensor, absl::string_view key) {
  std::string where = absl::StrCat(path, ": safetensors header");
  if (!tensor.empty()) absl::StrAppend(&where, ": tensor '", tensor, "'");
  if (!key.empty()) absl::StrAppend(&where, ": key '", key, "'");
  return where;
}

absl::Status Invalid(absl::string_view path, absl::string_view tensor, absl::string_view key,
                     absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(Where(path, tensor, key), ": ", what));
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(absl::string_view path,
                                                                 const json& value) {
  if (!value.is_object()) {
    return Invalid(path, "", kMetadataKey,
                   absl::StrCat("must be an object of string to string, got ", value.type_name()));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return Invalid(path, "", kMetadataKey,
                     absl::StrCat("value of '", key, "' must be a string, got ", item.type_name()));
    }
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

// Non-negative integers only: nlohmann stores those as number_unsigned, while negative
// numbers are number_integer and anything with a fraction or exponent is number_float.
bool IsCount(const json& value) { return value.is_number_unsigned(); }

absl::Status ParseShape(absl::string_view path, absl::string_view name, const json& value,
                        std::vector<int64_t>* shape) {
  if (!value.is_array()) {
    return Invalid(
        path, name, kShapeKey,
        absl::StrCat("must be an array of non-negative integers, got ", value.type_name()));
  }
  for (const json& dim : value) {
    if (!IsCount(dim) ||
        dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(path, name, kShapeKey,
                     absl::StrCat("dimension ", dim.dump(), " is not a non-negative integer"));
    }
    shape->push_back(static_cast<int64_t>(dim.get<uint64_t>()));
  }
  return absl::OkStatus();
}

absl::Status ParseOffsets(absl::string_view path, absl::string_view name, const json& value,
                          HeaderEntry* entry) {
  if (!value.is_array() || value.size() != 2 || !IsCount(value[0]) || !IsCount(value[1])) {
    return Invalid(
        path, name, kOffsetsKey,
        absl::StrCat("must be [begin, end] of non-negative integers, got ", value.dump()));
  }
  entry->begin = value[0].get<uint64_t>();
  entry->end = value[1].get<uint64_t>();
  if (entry->begin > entry->end) {
    return Invalid(path, name, kOffsetsKey,
                   absl::StrCat("begin ", entry->begin, " is after end ", entry->end));
  }
  return absl::OkStatus();
}

// The byte size the shape and dtype call for, or an error if it overflows 64 bits.
absl::StatusOr<uint64_t> ExpectedBytes(absl::string_view path, const HeaderEntry& entry) {
  uint64_t bytes = DTypeSize(entry.dtype);
  for (int64_t dim : entry.shape) {
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes)) {
      return Invalid(path, entry.name, kShapeKey, "byte size overflows 64 bits");
    }
  }
  return bytes;
}

absl::StatusOr<HeaderEntry> ParseEntry(absl::string_view path, const std::string& name,
                                       const json& value, uint64_t data_size) {
  if (!value.is_object()) {
    return Invalid(path, name, "",
                   absl::StrCat("entry must be an object with dtype, shape and data_offsets, got ",
                                value.type_name()));
  }
  for (const auto& item : value.items()) {
    if (item.key() != kDTypeKey && item.key() != kShapeKey && item.key() != kOffsetsKey) {
      return Invalid(path, name, item.key(), "unexpected key");
    }
  }
  for (const char* key : {kDTypeKey, kShapeKey, kOffsetsKey}) {
    if (!value.contains(key)) return Invalid(path, name, key, "missing");
  }
  HeaderEntry entry;
  entry.name = name;
  const json& dtype = value[kDTypeKey];
  if (!dtype.is_string()) {
    return Invalid(path, name, kDTypeKey, absl::StrCat("must be a string, got ", dtype.dump()));
  }
  std::optional<DType> parsed_dtype = DTypeFromName(dtype.get<std::string>());
  if (!parsed_dtype) {
    return Invalid(path, name, kDTypeKey,
                   absl::StrCat("unsupported dtype '", dtype.get<std::string>(),
                                "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)"));
  }
  entry.dtype = *parsed_dtype;
  TRIAD_RETURN_IF_ERROR(ParseShape(path, name, value[kShapeKey], &entry.shape));
  TRIAD_RETURN_IF_ERROR(ParseOffsets(path, name, value[kOffsetsKey], &entry));
  if (entry.end > data_size) {
    return absl::DataLossError(absl::StrCat(Where(path, name, kOffsetsKey), ": end ", entry.end,
                                            " is past the data section (", data_size,
                                            " bytes); the file may be truncated"));
  }
  TRIAD_ASSIGN_OR_RETURN(const uint64_t expected, ExpectedBytes(path, entry));
  if (expected != entry.end - entry.begin) {
    return Invalid(path, name, kOffsetsKey,
                   absl::StrCat("spans ", entry.end - entry.begin, " bytes but shape ",
                                value[kShapeKey].dump(), " of ",
                                std::string(DTypeName(entry.dtype)), " needs ", expected));
  }
  return entry;
}

// The spec requires the tensors to cover the data section exactly: sorted by offset, each one
// starts where the previous ended. An overlap could let two tensors alias; a gap hides bytes.
absl::Status CheckTiling(absl::string_view path, const std::vector<HeaderEntry>& sorted,
                         uint64_t data_size) {
  uint64_t covered = 0;
  const HeaderEntry* previous = nullptr;
  for (const HeaderEntry& entry : sorted) {
    if (entry.begin < covered) {
      return Invalid(
          path, entry.name, kOffsetsKey,
          absl::StrCat("[", entry.begin, ", ", entry.end, ") overlaps tensor '", previous->name,
                       "' [", previous->begin, ", ", previous->end, ")"));
    }
    if (entry.begin > covered) {
      return Invalid(path, entry.name, kOffsetsKey,
                     absl::StrCat("starts at ", entry.begin, ", leaving a gap: data bytes [",
                                  covered, ", ", entry.begin, ") belong to no tensor"));
    }
    covered = entry.end;
    previous = &entry;
  }
  if (covered != data_size) {
    return Invalid(path, previous != nullptr ? previous->name : "", "",
                   absl::StrCat("data bytes [", covered, ", ", data_size,
                                ") after the last tensor belong to no tensor"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ParsedHeader> ParseSafetensorsHeader(absl::string_view path,
                                                    std::string_view json_text,
                                                    uint64_t data_size) {
  TRIAD_ASSIGN_OR_RETURN(const json header, ParseJsonStrict(path, "safetensors header", json_text));
  if (!header.is_object()) {
    return Invalid(path, "", "", absl::StrCat("must be a JSON object, got ", header.type_name()));
  }
  ParsedHeader parsed;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      TRIAD_ASSIGN_OR_RETURN(parsed.metadata, ParseMetadata(path, value));
      continue;
    }
    if (key.empty()) return Invalid(path, "", "", "a tensor has an empty name");
    TRIAD_ASSIGN_OR_RETURN(HeaderEntry entry, ParseEntry(path, key, value, data_size));
    parsed.tensors.push_back(std::move(entry));
  }
  std::sort(parsed.tensors.begin(), parsed.tensors.end(),
            [](const HeaderEntry& a, const HeaderEntry& b) {
              return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
            });
  TRIAD_RETURN_IF_ERROR(CheckTiling(path, parsed.tensors, data_size));
  return parsed;
}

}  // namespace triad::io
