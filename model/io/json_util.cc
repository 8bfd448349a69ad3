#include "model/io/json_util.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace triad::io {

using nlohmann::json;

absl::StatusOr<json> ParseJsonStrict(absl::string_view path, absl::string_view what,
                                     std::string_view text) {
  // One key set per object being parsed, innermost last.
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  json::parser_callback_t track_keys = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!duplicate && !open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json value;
  try {
    value = json::parse(text.begin(), text.end(), track_keys);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, " is not valid JSON: ", e.what()));
  } catch (const std::exception& e) {  // std::bad_alloc on a huge document
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": ", what, " could not be parsed: ", e.what()));
  }
  if (duplicate) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, ": key '", *duplicate, "' appears twice in one object"));
  }
  return value;
}

}  // namespace triad::io
