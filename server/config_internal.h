// Internal to triad_config: what config.cc (the server, model and flag reading and
// validation) and config_classify.cc (each model's "classify" block) both use. No other
// library includes it. No LibTorch, no gRPC.
//
// Thread contract: free functions without shared state; an ObjectReader only reads the JSON
// object and strings it refers to, which must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "model/status_macros.h"
#include "server/config.h"

namespace triad {
namespace config_internal {

using Json = nlohmann::json;

// `text` in double quotes, hex-escaped, as error messages show strings.
std::string Quote(absl::string_view text);

// "source: key_path: what", leaving out the parts that are empty.
absl::Status KeyError(absl::string_view source, absl::string_view key_path, absl::string_view what);

// "models[index].key" ("models[index]" for an empty key).
std::string ModelKey(size_t index, absl::string_view key);

// A JSON value as an error shows it: compact and at most ~40 characters.
std::string Shown(const Json& value);

// Typed reads from one JSON object; every error names the source and the key's JSON path.
// Absent keys leave the output untouched (the field's default).
class ObjectReader {
 public:
  ObjectReader(const Json& object, const std::string& source, std::string prefix)
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  std::string Path(absl::string_view key) const {
    return prefix_.empty() ? std::string(key) : absl::StrCat(prefix_, ".", key);
  }
  absl::Status Error(absl::string_view key, absl::string_view what) const {
    return KeyError(source_, Path(key), what);
  }

  // Typos must not pass silently: any key outside `known` is an error.
  absl::Status CheckKeys(std::initializer_list<const char*> known) const {
    for (const auto& item : object_.items()) {
      bool found = false;
      for (const char* key : known) found = found || item.key() == key;
      if (!found) {
        return Error(item.key(),
                     absl::StrCat("unknown key (known: ", absl::StrJoin(known, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Require(const char* key) const {
    if (object_.contains(key)) return absl::OkStatus();
    return Error(key, "missing (required)");
  }

  absl::Status Read(const char* key, std::string* out) const {
    const auto it = object_.find(key);
    if (it == object_.end()) return absl::OkStatus();
    if (!it->is_string()) return Error(key, absl::StrCat("must be a string, got ", Shown(*it)));
    *out = it->get<std::string>();
    return absl::OkStatus();
  }

  absl::Status Read(const char* key, bool* out) const {
    const auto it = object_.find(key);
    if (it == object_.end()) return absl::OkStatus();
    if (!it->is_boolean()) {
      return Error(key, absl::StrCat("must be true or false, got ", Shown(*it)));
    }
    *out = it->get<bool>();
    return absl::OkStatus();
  }

  absl::Status Read(const char* key, std::optional<bool>* out) const {
    if (!object_.contains(key)) return absl::OkStatus();
    bool value = false;
    TRIAD_RETURN_IF_ERROR(Read(key, &value));
    *out = value;
    return absl::OkStatus();
  }

  absl::Status Read(const char* key, std::vector<std::string>* out) const {
    const auto it = object_.find(key);
    if (it == object_.end()) return absl::OkStatus();
    if (!it->is_array()) return Error(key, absl::StrCat("must be a list, got ", Shown(*it)));
    std::vector<std::string> values;
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& value = (*it)[i];
      if (!value.is_string()) {
        return Error(absl::StrCat(key, "[", i, "]"),
                     absl::StrCat("must be a string, got ", Shown(value)));
      }
      values.push_back(value.get<std::string>());
    }
    *out = std::move(values);
    return absl::OkStatus();
  }

  // The object under `key`, or nullptr when absent; any other type is an error.
  absl::StatusOr<const Json*> Object(const char* key) const {
    const auto it = object_.find(key);
    if (it == object_.end()) return nullptr;
    if (!it->is_object()) return Error(key, absl::StrCat("must be an object, got ", Shown(*it)));
    return &*it;
  }

  // Integers only (2.0, true and "2" are errors) that fit Int; Validate() checks the range.
  template <typename Int>
  absl::Status Read(const char* key, Int* out) const {
    const auto it = object_.find(key);
    if (it == object_.end()) return absl::OkStatus();
    if (!it->is_number_integer()) {
      return Error(key, absl::StrCat("must be an integer, got ", Shown(*it)));
    }
    const bool fits =
        it->is_number_unsigned()
            ? it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<Int>::max())
            : it->get<int64_t>() >= std::numeric_limits<Int>::min() &&
                  it->get<int64_t>() <= std::numeric_limits<Int>::max();
    if (!fits) return Error(key, absl::StrCat("out of range: ", Shown(*it)));
    *out = it->get<Int>();
    return absl::OkStatus();
  }

 private:
  const Json& object_;
  const std::string& source_;
  const std::string prefix_;
};

// config_classify.cc: the structural rules of models[index].classify (ServerConfig::Validate).
absl::Status ValidateClassify(const std::string& source, size_t index,
                              const ClassifyConfig& classify);

// config_classify.cc: the model's "classify" object (`parent` reads the model entry).
absl::StatusOr<ClassifyConfig> ReadClassify(const ObjectReader& parent, const std::string& source);

}  // namespace config_internal
}  // namespace triad
