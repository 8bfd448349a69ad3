// Normalizers of the HF tokenizer.json pipeline (BertNormalizer, Lowercase, Strip,
// StripAccents, Prepend, Replace, NFC/NFD/NFKC/NFKD, Sequence; Precompiled lives in
// precompiled.h). A normalizer rewrites one segment of text between added tokens.
// Thread contract: immutable after construction; Normalize is const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/regex.h"
#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites valid UTF-8 `text` in place; the result is valid UTF-8.
  virtual void Normalize(std::string* text) const = 0;
};

struct BertNormalizerOptions {
  bool clean_text = true;            // drop controls and U+FFFD, whitespace -> ' '
  bool handle_chinese_chars = true;  // spaces around CJK ideographs
  bool strip_accents = true;         // NFD, then drop nonspacing marks
  bool lowercase = true;             // per-character full lowercase
};
std::unique_ptr<Normalizer> MakeBertNormalizer(const BertNormalizerOptions& options);
std::unique_ptr<Normalizer> MakeLowercase();
std::unique_ptr<Normalizer> MakeStripAccents();
// Strips leading (`left`) and/or trailing (`right`) White_Space characters.
std::unique_ptr<Normalizer> MakeStrip(bool left, bool right);
// Prepends `prefix` to non-empty text.
std::unique_ptr<Normalizer> MakePrepend(std::string prefix);
// Replaces every non-overlapping occurrence of `pattern` (a literal when `regex` is null).
std::unique_ptr<Normalizer> MakeReplace(std::string pattern, std::unique_ptr<Regex> regex,
                                        std::string content);
std::unique_ptr<Normalizer> MakeUnicodeNormalizer(NormalForm form);
std::unique_ptr<Normalizer> MakeNormalizerSequence(
    std::vector<std::unique_ptr<Normalizer>> normalizers);

// Replaces literal `pattern` (non-empty) or `regex` matches in `text` with `content`; shared
// with the Replace decoder.
std::string ReplaceAll(const std::string& text, const std::string& pattern, const Regex* regex,
                       const std::string& content);

}  // namespace triad::tokenizer
