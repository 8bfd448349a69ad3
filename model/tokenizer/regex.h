// Regex: a compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) used by the
// Split pre-tokenizer and the Replace normalizer/decoder.
// Thread contract: immutable after Compile; FindAll may run concurrently (match data is per
// call).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace triad::tokenizer {

class Regex {
 public:
  // Compiles an Oniguruma-flavoured pattern as used by HF tokenizers. `\s`/`\S` are rewritten
  // to the Unicode White_Space set (Oniguruma's meaning, not PCRE2 10.42's), and `\p{L}`,
  // `\p{N}` gain the characters that ICU knows and PCRE2's older tables do not.
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches in valid UTF-8 `text`, as [begin, end) byte ranges, left to right.
  // Empty matches are skipped (they split nothing and replace nothing).
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

 private:
  explicit Regex(void* code) : code_(code) {}
  void* code_;  // pcre2_code_8*
};

}  // namespace triad::tokenizer
