// The tokenization models of the HF pipeline (BPE, Unigram, WordPiece) behind one interface:
// a model turns one pre-token ("word") into vocabulary ids and token strings.
// Thread contract: immutable after construction; every method is const and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace triad::tokenizer {

// The largest token id a tokenizer file may use (4,194,303). The largest real vocabularies
// have ~1M entries (XLM-V: 0.9M); ids index dense tables (Vocab's id -> token), so this also
// bounds what a malformed file's id makes a load allocate (fuzzing found an id of 148M that
// asked for 4.7 GB).
inline constexpr int32_t kMaxTokenId = (1 << 22) - 1;

// A model vocabulary: ids need not be dense (a hole has no token).
class Vocab {
 public:
  // InvalidArgument on an id outside [0, kMaxTokenId] or an id used twice.
  absl::Status Add(std::string token, int32_t id);
  std::optional<int32_t> Find(std::string_view token) const {
    // Debian's abseil has its own string_view type for heterogeneous lookup.
    const auto it = token_to_id_.find(absl::string_view(token.data(), token.size()));
    if (it == token_to_id_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* Token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !present_[id]) return nullptr;
    return &id_to_token_[id];
  }
  // One past the largest id.
  int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  absl::flat_hash_map<std::string, int32_t> token_to_id_;
  std::vector<std::string> id_to_token_;
  std::vector<char> present_;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `word` (valid UTF-8, non-empty) and, when `tokens` is not null, their
  // token strings.
  virtual void Tokenize(std::string_view word, std::vector<int32_t>* ids,
                        std::vector<std::string>* tokens) const = 0;
  virtual const Vocab& vocab() const = 0;
};

struct BpeOptions {
  std::optional<std::string> unk_token;   // unset: unknown characters are dropped
  std::string continuing_subword_prefix;  // "" = none
  std::string end_of_word_suffix;         // "" = none, e.g. "</w>" for GPT-1
  bool fuse_unk = false;                  // consecutive unknowns become one unk token
  bool byte_fallback = false;             // unknown characters become <0xXX> byte tokens
  bool ignore_merges = false;             // a word that is in the vocabulary is one token
};
using MergeList = std::vector<std::pair<std::string, std::string>>;
// InvalidArgument (naming the merge index) if a merge uses or produces an unknown token, or
// if unk_token is not in the vocabulary.
absl::StatusOr<std::unique_ptr<Model>> MakeBpe(Vocab vocab, const MergeList& merges,
                                               BpeOptions options);

// Unigram pieces with their log-probability scores; ids are positions.
using UnigramPieces = std::vector<std::pair<std::string, double>>;
absl::StatusOr<std::unique_ptr<Model>> MakeUnigram(UnigramPieces pieces,
                                                   std::optional<int32_t> unk_id,
                                                   bool byte_fallback);

absl::StatusOr<std::unique_ptr<Model>> MakeWordPiece(Vocab vocab, std::string unk_token,
                                                     std::string continuing_subword_prefix,
                                                     int max_input_chars_per_word);

// "<0xXX>" for a byte-fallback token.
std::string ByteFallbackToken(unsigned char byte);

}  // namespace triad::tokenizer
