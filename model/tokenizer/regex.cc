#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/tokenizer/regex.h"

#include <pcre2.h>
#include <unicode/uniset.h>
#include <unicode/unistr.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {
namespace {

constexpr absl::string_view kWhiteSpaceSet = "\\t-\\r\\x{85}\\p{Z}";

// The characters ICU puts in `icu_set` (e.g. "[:L:]") that PCRE2's own, older Unicode tables
// leave out of `pcre2_property` (e.g. "L"), as character-class ranges. Debian 12's PCRE2 has
// Unicode 14 tables, ICU has 15, and HF's Oniguruma is newer still: without this, letters and
// digits added in Unicode 15 (CJK extension H, Kawi digits, ...) would split differently.
std::string MissingFromPcre2(const char* icu_set, const char* pcre2_property) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeSet set(icu::UnicodeString(icu_set, -1, US_INV), status);
  if (U_FAILURE(status)) return "";
  std::string all;
  for (int32_t r = 0; r < set.getRangeCount(); ++r) {
    for (UChar32 c = set.getRangeStart(r); c <= set.getRangeEnd(r); ++c) {
      AppendUtf8(static_cast<char32_t>(c), &all);
    }
  }
  const std::string negated = absl::StrCat("\\P{", pcre2_property, "}");
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(negated.data()), negated.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) return "";
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  std::vector<std::pair<char32_t, char32_t>> missing;  // coalesced ranges
  for (size_t start = 0; start < all.size();) {
    if (pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(all.data()), all.size(), start,
                    PCRE2_NO_UTF_CHECK, data, nullptr) < 0) {
      break;
    }
    size_t pos = pcre2_get_ovector_pointer(data)[0];
    const char32_t cp = NextCodePoint(all, &pos);
    if (!missing.empty() && missing.back().second + 1 == cp) {
      missing.back().second = cp;
    } else {
      missing.emplace_back(cp, cp);
    }
    start = pos;
  }
  pcre2_match_data_free(data);
  pcre2_code_free(code);
  std::string ranges;
  for (const auto& [first, last] : missing) {
    absl::StrAppend(&ranges, "\\x{", absl::Hex(first), "}-\\x{", absl::Hex(last), "}");
  }
  return ranges;
}

// \p{L} and \p{N} as class bodies, with what PCRE2's tables miss (computed once).
const std::string& LetterClass() {
  static const std::string* body =
      new std::string(absl::StrCat("\\p{L}", MissingFromPcre2("[:L:]", "L")));
  return *body;
}
const std::string& NumberClass() {
  static const std::string* body =
      new std::string(absl::StrCat("\\p{N}", MissingFromPcre2("[:N:]", "N")));
  return *body;
}

// Appends `body` as a class body inside a class, or as a class of its own outside one.
void AppendClass(absl::string_view body, bool in_class, bool negated, std::string* out) {
  if (in_class) {
    absl::StrAppend(out, body);
  } else {
    absl::StrAppend(out, negated ? "[^" : "[", body, "]");
  }
}

// Rewrites the classes whose meaning differs between Oniguruma (HF) and PCRE2: \s and \S
// become the White_Space set, \p{L} and \p{N} gain the characters PCRE2 does not know yet.
// \S inside a class has no simple rewrite; it is left to PCRE2 (no HF pattern uses it).
std::string RewriteClasses(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const std::string_view rest = pattern.substr(i + 1);
      if (rest[0] == 's' || (rest[0] == 'S' && !in_class)) {
        AppendClass(kWhiteSpaceSet, in_class, rest[0] == 'S', &out);
        i += 1;
      } else if (rest.substr(0, 4) == "p{L}" || rest.substr(0, 4) == "p{N}") {
        AppendClass(rest[2] == 'L' ? LetterClass() : NumberClass(), in_class, false, &out);
        i += 4;
      } else {
        out.push_back('\\');
        out.push_back(pattern[++i]);
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern) {
  const std::string rewritten = RewriteClasses(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return absl::InvalidArgumentError(absl::StrCat("bad regex \"", ToAbsl(pattern),
                                                   "\": ", reinterpret_cast<const char*>(message),
                                                   " at offset ", error_offset));
  }
  // JIT failure is not an error: the interpreter gives the same matches, only slower.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<Regex>(new Regex(code));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::vector<std::pair<size_t, size_t>> Regex::FindAll(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    // Input was validated once at the API boundary; skip PCRE2's per-call UTF check, which
    // would otherwise rescan the rest of the subject on every match (quadratic).
    const int rc =
        pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end == begin) {
      if (begin >= text.size()) break;
      start = begin + Utf8Length(static_cast<unsigned char>(text[begin]));
      continue;
    }
    matches.emplace_back(begin, end);
    start = end;
  }
  pcre2_match_data_free(data);
  return matches;
}

}  // namespace triad::tokenizer
