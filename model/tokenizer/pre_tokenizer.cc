#include "model/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <utility>

#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {
namespace {

struct Span {
  size_t begin, end;
  bool is_match;
};

// Covers [0, size) with the given delimiter ranges and the gaps between them.
std::vector<Span> ToSpans(const std::vector<std::pair<size_t, size_t>>& matches, size_t size,
                          bool invert) {
  std::vector<Span> spans;
  spans.reserve(2 * matches.size() + 1);
  size_t last = 0;
  for (const auto& [begin, end] : matches) {
    if (begin > last) spans.push_back({last, begin, invert});
    spans.push_back({begin, end, !invert});
    last = end;
  }
  if (last < size) spans.push_back({last, size, invert});
  return spans;
}

// Joins a delimiter span to its neighbour in the output (the previous one when walking
// forward, the next one when walking backward) when `join(is_match, previous_match)`.
template <typename Join>
std::vector<Span> JoinSpans(const std::vector<Span>& spans, bool backward, Join join) {
  std::vector<Span> out;
  out.reserve(spans.size());
  bool previous_match = false;
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[backward ? spans.size() - 1 - i : i];
    if (join(s.is_match, previous_match) && !out.empty()) {
      (backward ? out.back().begin : out.back().end) = backward ? s.begin : s.end;
    } else {
      out.push_back(s);
    }
    previous_match = s.is_match;
  }
  if (backward) std::reverse(out.begin(), out.end());
  return out;
}

// HF's SplitDelimiterBehavior applied to a covering span list; returns the kept ranges.
std::vector<Span> ApplyBehavior(std::vector<Span> spans, SplitBehavior behavior) {
  switch (behavior) {
    case SplitBehavior::kRemoved: {
      std::vector<Span> out;
      for (const Span& s : spans) {
        if (!s.is_match) out.push_back(s);
      }
      return out;
    }
    case SplitBehavior::kIsolated:
      return spans;
    case SplitBehavior::kContiguous:
      return JoinSpans(spans, false, [](bool m, bool prev) { return m && prev; });
    case SplitBehavior::kMergedWithPrevious:
      return JoinSpans(spans, false, [](bool m, bool prev) { return m && !prev; });
    case SplitBehavior::kMergedWithNext:
      return JoinSpans(spans, true, [](bool m, bool prev) { return m && !prev; });
  }
  return spans;
}

// Replaces every piece by the pieces `split_fn(piece)` keeps, dropping empty ones, and
// keeps `first_at_origin` honest when the first kept range no longer starts at 0.
template <typename SplitFn>
void SplitPieces(PreTokenized* pre, SplitFn split_fn) {
  std::vector<std::string> out;
  out.reserve(pre->pieces.size() * 2);
  for (size_t i = 0; i < pre->pieces.size(); ++i) {
    const std::string& piece = pre->pieces[i];
    const std::vector<Span> kept = split_fn(piece);
    for (const Span& s : kept) {
      if (s.end <= s.begin) continue;
      if (out.empty() && (i > 0 || s.begin > 0)) pre->first_at_origin = false;
      out.emplace_back(piece, s.begin, s.end - s.begin);
    }
  }
  pre->pieces = std::move(out);
}

// Each character matching `pred` is its own delimiter.
template <typename Pred>
std::vector<std::pair<size_t, size_t>> CharMatches(const std::string& text, Pred pred) {
  std::vector<std::pair<size_t, size_t>> matches;
  for (size_t pos = 0; pos < text.size();) {
    const size_t begin = pos;
    if (pred(NextCodePoint(text, &pos))) matches.emplace_back(begin, pos);
  }
  return matches;
}

std::vector<std::pair<size_t, size_t>> LiteralMatches(const std::string& text,
                                                      const std::string& pattern) {
  std::vector<std::pair<size_t, size_t>> matches;
  if (pattern.empty()) return matches;
  for (size_t at = text.find(pattern); at != std::string::npos;
       at = text.find(pattern, at + pattern.size())) {
    matches.emplace_back(at, at + pattern.size());
  }
  return matches;
}

class Split : public PreTokenizer {
 public:
  Split(std::string pattern, std::unique_ptr<Regex> regex, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)),
        regex_(std::move(regex)),
        behavior_(behavior),
        invert_(invert) {}

  void PreTokenize(PreTokenized* pre) const override {
    SplitPieces(pre, [&](const std::string& piece) {
      const auto matches = regex_ ? regex_->FindAll(piece) : LiteralMatches(piece, pattern_);
      return ApplyBehavior(ToSpans(matches, piece.size(), invert_), behavior_);
    });
  }

 private:
  std::string pattern_;
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, std::unique_ptr<Regex> regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex), regex_(std::move(regex)) {}

  void PreTokenize(PreTokenized* pre) const override {
    if (add_prefix_space_) {
      for (std::string& piece : pre->pieces) {
        if (piece.empty() || piece[0] != ' ') piece.insert(0, " ");
      }
    }
    if (use_regex_ && regex_ != nullptr) {
      SplitPieces(pre, [&](const std::string& piece) {
        return ToSpans(regex_->FindAll(piece), piece.size(), false);
      });
    }
    for (std::string& piece : pre->pieces) {
      std::string mapped;
      mapped.reserve(piece.size() * 2);
      AppendByteLevel(piece, &mapped);
      piece = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_, use_regex_;
  std::unique_ptr<Regex> regex_;
};

class Metaspace : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}

  void PreTokenize(PreTokenized* pre) const override {
    for (size_t i = 0; i < pre->pieces.size(); ++i) {
      std::string& piece = pre->pieces[i];
      if (piece.empty()) continue;  // HF cannot prepend to an empty string
      piece = ReplaceSpaces(piece);
      const bool prepend = scheme_ == PrependScheme::kAlways ||
                           (scheme_ == PrependScheme::kFirst && i == 0 && pre->first_at_origin);
      if (prepend && piece.compare(0, replacement_.size(), replacement_) != 0) {
        piece.insert(0, replacement_);
      }
    }
    if (!split_) return;
    SplitPieces(pre, [&](const std::string& piece) {
      return ApplyBehavior(ToSpans(LiteralMatches(piece, replacement_), piece.size(), false),
                           SplitBehavior::kMergedWithNext);
    });
  }

 private:
  std::string ReplaceSpaces(const std::string& piece) const {
    std::string out;
    out.reserve(piece.size() + 8);
    for (const char c : piece) {
      if (c == ' ') {
        out.append(replacement_);
      } else {
        out.push_back(c);
      }
    }
    return out;
  }

  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class CharClassSplit : public PreTokenizer {
 public:
  explicit CharClassSplit(bool split_punctuation) : split_punctuation_(split_punctuation) {}

  void PreTokenize(PreTokenized* pre) const override {
    SplitPieces(pre, [](const std::string& piece) {
      return ApplyBehavior(ToSpans(CharMatches(piece, IsWhitespace), piece.size(), false),
                           SplitBehavior::kRemoved);
    });
    if (!split_punctuation_) return;
    SplitPieces(pre, [](const std::string& piece) {
      return ToSpans(CharMatches(piece, IsBertPunctuation), piece.size(), false);
    });
  }

 private:
  bool split_punctuation_;
};

class PreTokenizerSequence : public PreTokenizer {
 public:
  explicit PreTokenizerSequence(std::vector<std::unique_ptr<PreTokenizer>> pre_tokenizers)
      : pre_tokenizers_(std::move(pre_tokenizers)) {}
  void PreTokenize(PreTokenized* pre) const override {
    for (const auto& p : pre_tokenizers_) p->PreTokenize(pre);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> pre_tokenizers_;
};

}  // namespace

std::unique_ptr<PreTokenizer> MakeSplit(std::string pattern, std::unique_ptr<Regex> regex,
                                        SplitBehavior behavior, bool invert) {
  return std::make_unique<Split>(std::move(pattern), std::move(regex), behavior, invert);
}
std::unique_ptr<PreTokenizer> MakeByteLevelPreTokenizer(bool add_prefix_space, bool use_regex,
                                                        std::unique_ptr<Regex> gpt2_regex) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex,
                                                 std::move(gpt2_regex));
}
std::unique_ptr<PreTokenizer> MakeMetaspace(std::string replacement, PrependScheme scheme,
                                            bool split) {
  return std::make_unique<Metaspace>(std::move(replacement), scheme, split);
}
std::unique_ptr<PreTokenizer> MakeBertPreTokenizer() {
  return std::make_unique<CharClassSplit>(true);
}
std::unique_ptr<PreTokenizer> MakeWhitespaceSplit() {
  return std::make_unique<CharClassSplit>(false);
}
std::unique_ptr<PreTokenizer> MakePreTokenizerSequence(
    std::vector<std::unique_ptr<PreTokenizer>> pre_tokenizers) {
  return std::make_unique<PreTokenizerSequence>(std::move(pre_tokenizers));
}

}  // namespace triad::tokenizer
