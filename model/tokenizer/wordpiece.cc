// WordPiece (BERT): greedy longest-match-first, continuation pieces carry a prefix ("##");
// a word with any unmatchable part, or longer than the limit, becomes one unk token.
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/tokenizer/model.h"
#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {
namespace {

class WordPiece : public Model {
 public:
  WordPiece(Vocab vocab, int32_t unk_id, std::string prefix, int max_chars)
      : vocab_(std::move(vocab)),
        unk_id_(unk_id),
        prefix_(std::move(prefix)),
        max_chars_(max_chars) {}

  void Tokenize(std::string_view word, std::vector<int32_t>* ids,
                std::vector<std::string>* tokens) const override {
    const std::vector<int32_t> found = Greedy(word);
    const bool bad = found.empty();
    for (const int32_t id : bad ? std::vector<int32_t>{unk_id_} : found) {
      ids->push_back(id);
      if (tokens != nullptr) tokens->push_back(*vocab_.Token(id));
    }
  }

  const Vocab& vocab() const override { return vocab_; }

 private:
  // The pieces of `word`, or nothing when it cannot be covered.
  std::vector<int32_t> Greedy(std::string_view word) const {
    std::vector<int32_t> found;
    if (static_cast<int64_t>(ToCodePoints(word).size()) > max_chars_) return found;
    std::string candidate;
    for (size_t start = 0; start < word.size();) {
      size_t end = word.size();
      std::optional<int32_t> match;
      while (end > start) {
        candidate = start > 0 ? absl::StrCat(prefix_, ToAbsl(word.substr(start, end - start)))
                              : std::string(word.substr(start, end - start));
        match = vocab_.Find(candidate);
        if (match) break;
        do {
          --end;  // back up to the previous character boundary
        } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (!match) return {};
      found.push_back(*match);
      start = end;
    }
    return found;
  }

  Vocab vocab_;
  int32_t unk_id_;
  std::string prefix_;
  int max_chars_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> MakeWordPiece(Vocab vocab, std::string unk_token,
                                                     std::string continuing_subword_prefix,
                                                     int max_input_chars_per_word) {
  const auto unk_id = vocab.Find(unk_token);
  if (!unk_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("unk_token \"", unk_token, "\" is not in the vocabulary"));
  }
  return std::unique_ptr<Model>(new WordPiece(
      std::move(vocab), *unk_id, std::move(continuing_subword_prefix), max_input_chars_per_word));
}

}  // namespace triad::tokenizer
