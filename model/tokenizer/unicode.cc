// Implementation notes: ICU answers property and case questions (its data is newer than
// utf8proc's in Debian 12), utf8proc does normalization on UTF-8 directly, and ICU's
// BreakIterator gives grapheme clusters.
#include "model/tokenizer/unicode.h"

#include <unicode/brkiter.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"

namespace triad::tokenizer {
namespace {

// Length of the well-formed UTF-8 sequence at text[pos], or 0 if it is malformed.
size_t ValidSequenceLength(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return 1;
  const size_t n = Utf8Length(b0);
  if (n == 1 || pos + n > text.size()) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  const unsigned char b1 = byte(1);
  if (n == 2 && b0 < 0xC2) return 0;                                  // overlong
  if (n == 3 && b0 == 0xE0 && b1 < 0xA0) return 0;                    // overlong
  if (n == 3 && b0 == 0xED && b1 >= 0xA0) return 0;                   // surrogate
  if (n == 4 && b0 == 0xF0 && b1 < 0x90) return 0;                    // overlong
  if (n == 4 && (b0 > 0xF4 || (b0 == 0xF4 && b1 >= 0x90))) return 0;  // > U+10FFFF
  return n;
}

}  // namespace

absl::Status ValidateUtf8(std::string_view text, std::string_view what) {
  size_t pos = 0;
  while (pos < text.size()) {
    // ASCII fast path: most input is plain text.
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t n = ValidSequenceLength(text, pos);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          ToAbsl(what), " is not valid UTF-8 (bad byte sequence at byte offset ", pos, ")"));
    }
    pos += n;
  }
  return absl::OkStatus();
}

char32_t NextCodePoint(std::string_view text, size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + *pos;
  const size_t n = Utf8Length(p[0]);
  *pos += n;
  switch (n) {
    case 1:
      return p[0];
    case 2:
      return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    case 3:
      return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    default:
      return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) |
             (p[3] & 0x3Fu);
  }
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::vector<char32_t> ToCodePoints(std::string_view text) {
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) cps.push_back(NextCodePoint(text, &pos));
  return cps;
}

bool IsWhitespace(char32_t cp) { return u_isUWhiteSpace(static_cast<UChar32>(cp)) != 0; }

namespace {

// HF's BERT rules read general categories from the unicode_categories crate, whose table is
// Unicode 8.0: characters assigned later have no category there (probed against HF itself).
bool KnownToUnicode8(char32_t cp) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(cp), age);
  return age[0] != 0 && (age[0] < 8 || (age[0] == 8 && age[1] == 0));
}

}  // namespace

bool IsBertPunctuation(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
           (cp >= 123 && cp <= 126);
  }
  if (cp == 0x166D || cp == 0x111C9) return true;  // Po in Unicode 8.0, now So and Mn
  return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & U_GC_P_MASK) != 0 && KnownToUnicode8(cp);
}

bool IsBertControl(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  constexpr uint32_t kMask = U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK;
  return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & kMask) != 0 && KnownToUnicode8(cp);
}

bool IsBertNonspacingMark(char32_t cp) {
  // Category changes since Unicode 8.0: U+1734 was Mn (now Mc); these four were not Mn.
  if (cp == 0x1734) return true;
  if (cp == 0x1885 || cp == 0x1886 || cp == 0xA9BD || cp == 0x111C9) return false;
  return u_charType(static_cast<UChar32>(cp)) == U_NON_SPACING_MARK && KnownToUnicode8(cp);
}

bool IsNonspacingMark(char32_t cp) {
  return u_charType(static_cast<UChar32>(cp)) == U_NON_SPACING_MARK;
}

bool IsChineseChar(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

void AppendLowercase(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
    return;
  }
  // A lone character gives ICU no casing context, so the result is the unconditional full
  // mapping (final sigma never applies), which is what a per-char lowercase does.
  UChar src[2];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(cp));
  UChar dst[8];
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n = u_strToLower(dst, 8, src, src_len, "", &err);
  if (U_FAILURE(err) || n > 8) {
    AppendUtf8(cp, out);
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U16_NEXT_UNSAFE(dst, i, c);
    AppendUtf8(static_cast<char32_t>(c), out);
  }
}

std::string NormalizeUnicode(std::string_view text, NormalForm form) {
  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormalForm::kNfc:
      options |= UTF8PROC_COMPOSE;
      break;
    case NormalForm::kNfd:
      options |= UTF8PROC_DECOMPOSE;
      break;
    case NormalForm::kNfkc:
      options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    case NormalForm::kNfkd:
      options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
  }
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &result,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0) return std::string(text);  // Unreachable for validated input.
  std::string out(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
  std::free(result);
  return out;
}

namespace {

// Appends the grapheme lengths of `text` (ICU; one break iterator per thread, since creating
// one costs far more than using it).
void AppendIcuGraphemes(std::string_view text, std::vector<size_t>* lengths) {
  thread_local std::unique_ptr<icu::BreakIterator> it;
  UErrorCode err = U_ZERO_ERROR;
  if (it == nullptr) {
    it.reset(icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), err));
  }
  if (U_FAILURE(err) || it == nullptr) {
    lengths->push_back(text.size());
    return;
  }
  const icu::UnicodeString u16 = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  it->setText(u16);
  // Break positions are UTF-16 indices; walk the UTF-8 text in step to convert them.
  size_t byte_pos = 0;
  int32_t u16_pos = 0;
  for (int32_t end = it->next(); end != icu::BreakIterator::DONE; end = it->next()) {
    const size_t start = byte_pos;
    while (u16_pos < end) {
      const char32_t cp = NextCodePoint(text, &byte_pos);
      u16_pos += cp >= 0x10000 ? 2 : 1;
    }
    lengths->push_back(byte_pos - start);
  }
}

inline bool IsAscii(char c) { return static_cast<unsigned char>(c) < 0x80; }

}  // namespace

std::vector<size_t> GraphemeLengths(std::string_view text) {
  // Between two ASCII characters there is always a cluster boundary, except inside "\r\n"
  // (the rules that join characters, GB9-GB13, all involve non-ASCII classes). Cutting there
  // leaves ICU only the stretches around non-ASCII text.
  std::vector<size_t> lengths;
  lengths.reserve(text.size());
  size_t piece = 0;
  bool piece_ascii = text.empty() || IsAscii(text[0]);
  const auto flush = [&](size_t end) {
    if (piece_ascii) {
      lengths.push_back(end - piece);  // one ASCII byte, or "\r\n"
    } else {
      AppendIcuGraphemes(text.substr(piece, end - piece), &lengths);
    }
  };
  for (size_t k = 1; k < text.size(); ++k) {
    const bool cut =
        IsAscii(text[k - 1]) && IsAscii(text[k]) && !(text[k - 1] == '\r' && text[k] == '\n');
    if (cut) {
      flush(k);
      piece = k;
      piece_ascii = true;
    } else if (!IsAscii(text[k])) {
      piece_ascii = false;
    }
  }
  if (!text.empty()) flush(text.size());
  return lengths;
}

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t n = ValidSequenceLength(bytes, pos);
    if (n > 0) {
      out.append(bytes.data() + pos, n);
      pos += n;
      continue;
    }
    // A maximal invalid subsequence is the longest prefix of a valid sequence (at least one
    // byte); Rust and the Unicode standard replace each with one U+FFFD.
    size_t bad = 1;
    const unsigned char b0 = static_cast<unsigned char>(bytes[pos]);
    const size_t want = Utf8Length(b0);
    while (want > 1 && bad < want && pos + bad < bytes.size()) {
      const unsigned char b = static_cast<unsigned char>(bytes[pos + bad]);
      unsigned char lo = 0x80, hi = 0xBF;
      if (bad == 1 && b0 == 0xE0) lo = 0xA0;
      if (bad == 1 && b0 == 0xED) hi = 0x9F;
      if (bad == 1 && b0 == 0xF0) lo = 0x90;
      if (bad == 1 && b0 == 0xF4) hi = 0x8F;
      if (b0 < 0xC2 || b0 > 0xF4 || b < lo || b > hi) break;
      ++bad;
    }
    out.append("\xEF\xBF\xBD");
    pos += bad;
  }
  return out;
}

}  // namespace triad::tokenizer
