// Pre-tokenizers of the HF tokenizer.json pipeline (Split, ByteLevel, Metaspace,
// BertPreTokenizer, Whitespace, WhitespaceSplit, Sequence): they cut a normalized segment into
// the "words" the model tokenizes independently.
// Thread contract: immutable after construction; PreTokenize is const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/regex.h"

namespace triad::tokenizer {

// The pieces of one segment. Only what the pipeline needs is tracked: whether the first piece
// starts at offset 0 of the input sequence (Metaspace's "first" prepend scheme).
struct PreTokenized {
  std::vector<std::string> pieces;
  bool first_at_origin = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Rewrites and splits `pre->pieces`; empty pieces are dropped.
  virtual void PreTokenize(PreTokenized* pre) const = 0;
};

// How Split treats the delimiters it finds (HF's SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
// Splits on matches of `regex`, or of the literal `pattern` when `regex` is null. With
// `invert`, the non-matching spans are the delimiters.
std::unique_ptr<PreTokenizer> MakeSplit(std::string pattern, std::unique_ptr<Regex> regex,
                                        SplitBehavior behavior, bool invert);
// `gpt2_regex`: the GPT-2 split pattern, required when `use_regex`.
std::unique_ptr<PreTokenizer> MakeByteLevelPreTokenizer(bool add_prefix_space, bool use_regex,
                                                        std::unique_ptr<Regex> gpt2_regex);
enum class PrependScheme { kAlways, kNever, kFirst };
std::unique_ptr<PreTokenizer> MakeMetaspace(std::string replacement, PrependScheme scheme,
                                            bool split);
std::unique_ptr<PreTokenizer> MakeBertPreTokenizer();
std::unique_ptr<PreTokenizer> MakeWhitespaceSplit();
std::unique_ptr<PreTokenizer> MakePreTokenizerSequence(
    std::vector<std::unique_ptr<PreTokenizer>> pre_tokenizers);

// The GPT-2 / ByteLevel split pattern.
inline constexpr char kGpt2Pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
// The Whitespace pre-tokenizer is Split on this pattern, Isolated, keeping word and
// punctuation runs.
inline constexpr char kWhitespacePattern[] = "\\w+|[^\\w\\s]+";

}  // namespace triad::tokenizer
