// Typed, path-reporting access to tokenizer.json fields. Internal to the JSON loaders: every
// error names the JSON pointer of the offending value ("tokenizer.json: /model/merges/3: ...").
// Thread contract: stateless helpers.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "model/tokenizer/model.h"
#include "model/tokenizer/regex.h"

namespace triad::tokenizer::json_fields {

using Json = nlohmann::json;

inline std::string Child(absl::string_view path, absl::string_view key) {
  return absl::StrCat(path, "/", key);
}
inline std::string Child(absl::string_view path, size_t index) {
  return absl::StrCat(path, "/", index);
}

inline absl::Status Invalid(absl::string_view path, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", path, ": ", message));
}
inline absl::Status Unsupported(absl::string_view path, absl::string_view message) {
  return absl::UnimplementedError(absl::StrCat("tokenizer.json: ", path, ": ", message));
}

// The member `key` of object `obj`, or null when absent (or when `obj` is not an object).
inline const Json* Member(const Json& obj, absl::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(std::string(key));
  return it == obj.end() ? nullptr : &*it;
}

// A string member; absent or null gives `fallback` (nullopt = required).
absl::StatusOr<std::string> String(const Json& obj, absl::string_view path, absl::string_view key,
                                   std::optional<std::string> fallback = std::nullopt);
// A string member that may be null/absent (nullopt then).
absl::StatusOr<std::optional<std::string>> OptionalString(const Json& obj, absl::string_view path,
                                                          absl::string_view key);
absl::StatusOr<bool> Bool(const Json& obj, absl::string_view path, absl::string_view key,
                          bool fallback);
// An integer member; absent or null gives `fallback` (nullopt = required).
absl::StatusOr<int64_t> Int(const Json& obj, absl::string_view path, absl::string_view key,
                            std::optional<int64_t> fallback = std::nullopt);
// `value` (at `path`) as a token id: an integer in [0, kMaxTokenId].
absl::StatusOr<int32_t> TokenId(const Json& value, absl::string_view path);
// A required token-id member (TokenId).
absl::StatusOr<int32_t> TokenId(const Json& obj, absl::string_view path, absl::string_view key);
// The "type" of a component object.
absl::StatusOr<std::string> Type(const Json& obj, absl::string_view path);

// A {"String": s} or {"Regex": r} pattern: fills `literal` or returns a compiled regex.
absl::Status Pattern(const Json& obj, absl::string_view path, std::string* literal,
                     std::unique_ptr<Regex>* regex);

}  // namespace triad::tokenizer::json_fields
