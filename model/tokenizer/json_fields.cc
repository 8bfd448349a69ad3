#include "model/tokenizer/json_fields.h"

#include <utility>

namespace triad::tokenizer::json_fields {

absl::StatusOr<std::string> String(const Json& obj, absl::string_view path, absl::string_view key,
                                   std::optional<std::string> fallback) {
  const Json* value = Member(obj, key);
  if (value == nullptr || value->is_null()) {
    if (fallback) return *std::move(fallback);
    return Invalid(Child(path, key), "required string is missing");
  }
  if (!value->is_string()) return Invalid(Child(path, key), "expected a string");
  return value->get<std::string>();
}

absl::StatusOr<std::optional<std::string>> OptionalString(const Json& obj, absl::string_view path,
                                                          absl::string_view key) {
  const Json* value = Member(obj, key);
  if (value == nullptr || value->is_null()) return std::optional<std::string>();
  if (!value->is_string()) return Invalid(Child(path, key), "expected a string or null");
  return std::optional<std::string>(value->get<std::string>());
}

absl::StatusOr<bool> Bool(const Json& obj, absl::string_view path, absl::string_view key,
                          bool fallback) {
  const Json* value = Member(obj, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_boolean()) return Invalid(Child(path, key), "expected true or false");
  return value->get<bool>();
}

absl::StatusOr<int64_t> Int(const Json& obj, absl::string_view path, absl::string_view key,
                            std::optional<int64_t> fallback) {
  const Json* value = Member(obj, key);
  if (value == nullptr || value->is_null()) {
    if (fallback) return *fallback;
    return Invalid(Child(path, key), "required integer is missing");
  }
  if (!value->is_number_integer()) return Invalid(Child(path, key), "expected an integer");
  return value->get<int64_t>();
}

absl::StatusOr<int32_t> TokenId(const Json& value, absl::string_view path) {
  // Unsigned values above INT64_MAX are is_number_unsigned; get<int64_t> would wrap them.
  if (!value.is_number_integer() ||
      (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{kMaxTokenId}) ||
      value.get<int64_t>() < 0 || value.get<int64_t>() > kMaxTokenId) {
    return Invalid(path, absl::StrCat("expected a token id, an integer in [0, ", kMaxTokenId,
                                      "], got ", value.dump()));
  }
  return static_cast<int32_t>(value.get<int64_t>());
}

absl::StatusOr<int32_t> TokenId(const Json& obj, absl::string_view path, absl::string_view key) {
  const Json* value = Member(obj, key);
  if (value == nullptr || value->is_null()) {
    return Invalid(Child(path, key), "required token id is missing");
  }
  return TokenId(*value, Child(path, key));
}

absl::StatusOr<std::string> Type(const Json& obj, absl::string_view path) {
  if (!obj.is_object()) return Invalid(path, "expected an object");
  return String(obj, path, "type");
}

absl::Status Pattern(const Json& obj, absl::string_view path, std::string* literal,
                     std::unique_ptr<Regex>* regex) {
  const std::string pattern_path = Child(path, "pattern");
  const Json* pattern = Member(obj, "pattern");
  if (pattern == nullptr || !pattern->is_object()) {
    return Invalid(pattern_path, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  if (const Json* s = Member(*pattern, "String"); s != nullptr && s->is_string()) {
    *literal = s->get<std::string>();
    return absl::OkStatus();
  }
  const Json* r = Member(*pattern, "Regex");
  if (r == nullptr || !r->is_string()) {
    return Invalid(pattern_path, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  auto compiled = Regex::Compile(r->get<std::string>());
  if (!compiled.ok()) return Invalid(Child(pattern_path, "Regex"), compiled.status().message());
  *regex = *std::move(compiled);
  return absl::OkStatus();
}

}  // namespace triad::tokenizer::json_fields
