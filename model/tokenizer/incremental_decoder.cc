// IncrementalDecoder: decodes a small window of ids (the ids of the last emitted text as
// context, then the new ones) and emits what the new ids add to the context's text. Keeping
// the context in the window makes first-token rules (Metaspace, Strip) apply to the context,
// not to the new text, so the pieces add up to the full decode. A window whose text ends in
// U+FFFD is held: it is an incomplete UTF-8 character that a later byte token completes. So
// is a window whose last decoded id is a byte-fallback token (<0xHH>): HF's ByteFallback
// decodes a run of them as a unit, and a later byte token can turn the whole run, valid so
// far, into U+FFFDs (<0x01> then <0xFD> gives two U+FFFD, not "\x01" and one).
#include <utility>

#include "model/tokenizer/decoder.h"
#include "model/tokenizer/tokenizer.h"

namespace triad::tokenizer {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

bool EndsWithReplacement(const std::string& text) {
  return text.size() >= kReplacement.size() &&
         text.compare(text.size() - kReplacement.size(), kReplacement.size(), kReplacement) == 0;
}

}  // namespace

bool IncrementalDecoder::EndsInByteRun() const {
  for (auto it = ids_.rbegin(); it != ids_.rend(); ++it) {
    if (skip_special_tokens_ && tokenizer_.IsSpecial(*it)) continue;  // decoded as nothing
    const std::optional<std::string> token = tokenizer_.IdToToken(*it);
    if (!token) continue;  // outside the vocabulary: skipped by Decode
    return ParseByteToken(*token) >= 0;
  }
  return false;
}

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

absl::StatusOr<std::string> IncrementalDecoder::Push(int32_t id) {
  ids_.push_back(id);
  const std::string text = tokenizer_.DecodeTokens(ids_, skip_special_tokens_);
  const bool grows =
      text.size() > prefix_text_.size() && text.compare(0, prefix_text_.size(), prefix_text_) == 0;
  if (!grows || EndsWithReplacement(text) || EndsInByteRun()) return std::string();
  std::string out = text.substr(prefix_text_.size());
  // The ids just emitted become the next window's context.
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_end_));
  prefix_end_ = ids_.size();
  prefix_text_ = tokenizer_.DecodeTokens(ids_, skip_special_tokens_);
  return out;
}

absl::StatusOr<std::string> IncrementalDecoder::Flush() {
  const std::string text = tokenizer_.DecodeTokens(ids_, skip_special_tokens_);
  // Normally the context's text is a prefix; if a decoder ever breaks that, emit what
  // follows the common part rather than dropping text.
  size_t common = 0;
  while (common < text.size() && common < prefix_text_.size() &&
         text[common] == prefix_text_[common]) {
    ++common;
  }
  while (common > 0 && (static_cast<unsigned char>(text[common]) & 0xC0) == 0x80) --common;
  std::string out = text.substr(common);
  ids_.clear();
  prefix_end_ = 0;
  prefix_text_.clear();
  return out;
}

}  // namespace triad::tokenizer
