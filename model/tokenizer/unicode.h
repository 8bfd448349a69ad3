// UTF-8 and Unicode-property helpers for the tokenizer. Properties, case mapping, normalization
// and grapheme segmentation come from ICU and utf8proc; only UTF-8 coding is done by hand.
// Thread contract: stateless free functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace triad::tokenizer {

// Debian's abseil (20220623) has its own string_view type; StrCat and friends need it.
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

// OK if `text` is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF);
// otherwise InvalidArgument naming `what` and the byte offset of the first bad sequence.
absl::Status ValidateUtf8(std::string_view text, std::string_view what);

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
inline size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at text[*pos] (valid UTF-8 assumed) and advances *pos past it.
char32_t NextCodePoint(std::string_view text, size_t* pos);

// Appends the UTF-8 encoding of `cp`.
void AppendUtf8(char32_t cp, std::string* out);

// Splits valid UTF-8 into its code points.
std::vector<char32_t> ToCodePoints(std::string_view text);

// True for characters with the Unicode White_Space property (Rust's char::is_whitespace).
bool IsWhitespace(char32_t cp);
// ASCII punctuation/symbol or general category P* (as of Unicode 8.0, HF's table): BERT's
// punctuation.
bool IsBertPunctuation(char32_t cp);
// Control, format or private-use character other than \t \n \r, as HF's BERT "control"
// (categories as of Unicode 8.0, HF's table).
bool IsBertControl(char32_t cp);
// General category Mn (nonspacing mark), what accent stripping removes.
bool IsNonspacingMark(char32_t cp);
// IsNonspacingMark as HF's BertNormalizer sees it (its category table is Unicode 8.0).
bool IsBertNonspacingMark(char32_t cp);
// CJK ideograph blocks that BERT surrounds with spaces.
bool IsChineseChar(char32_t cp);

// Full (unconditional, per character) lowercase mapping, as Rust's char::to_lowercase.
void AppendLowercase(char32_t cp, std::string* out);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
// Unicode normalization of valid UTF-8.
std::string NormalizeUnicode(std::string_view text, NormalForm form);

// Byte lengths of the extended grapheme clusters of valid UTF-8 text, in order.
std::vector<size_t> GraphemeLengths(std::string_view text);

// Replaces each maximal invalid subsequence with U+FFFD (Rust's String::from_utf8_lossy).
std::string Utf8Lossy(std::string_view bytes);

}  // namespace triad::tokenizer
