// Parsing and full validation of a safetensors JSON header. Internal to triad_io; kept apart
// from the mapping so that every rule can be tested on a string.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/io/safetensors.h"

namespace triad::io {

// One tensor entry of the header, offsets relative to the start of the data section.
struct HeaderEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct ParsedHeader {
  std::vector<HeaderEntry> tensors;  // sorted by (begin, end, name): storage order
  std::map<std::string, std::string> metadata;
};

// Parses `json_text` and checks every rule of the format against a data section of
// `data_size` bytes: entry shapes and dtypes, byte spans, and that the spans tile
// [0, data_size) with no overlap and no gap. `path` only labels error messages. Never throws.
absl::StatusOr<ParsedHeader> ParseSafetensorsHeader(absl::string_view path,
                                                    std::string_view json_text, uint64_t data_size);

}  // namespace triad::io
