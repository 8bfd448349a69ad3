// Encoding: the result of encoding one input or one pair (HF's Encoding without offsets).
// Thread contract: a plain value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace triad::tokenizer {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;  // vocabulary strings; empty when encoding ids only
  std::vector<int32_t> type_ids;    // segment of each token: 0 for the first input, 1 ...
};

}  // namespace triad::tokenizer
