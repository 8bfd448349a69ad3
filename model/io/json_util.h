// Strict JSON parsing for triad_io's two inputs (safetensors headers and shard indexes).
// Internal to triad_io; the only place nlohmann exceptions are caught.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace triad::io {

// Parses `text` as one JSON value. Unlike plain nlohmann parsing, a key repeated inside one
// object is an error: the library would keep only the last one, silently dropping a tensor or
// a field. Errors are InvalidArgument, prefixed with `path` and `what` (e.g. "header").
// Never throws.
absl::StatusOr<nlohmann::json> ParseJsonStrict(absl::string_view path, absl::string_view what,
                                               std::string_view text);

}  // namespace triad::io
