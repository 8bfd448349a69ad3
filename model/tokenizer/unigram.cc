// Unigram (SentencePiece) segmentation: Viterbi over the lattice of vocabulary pieces, with
// HF's tie rule (on equal scores the path found first, i.e. the earlier split, is kept) and
// unknown characters fused into one <unk>.
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/tokenizer/byte_trie.h"
#include "model/tokenizer/model.h"
#include "model/tokenizer/unicode.h"
#include "model/tokenizer/word_memo.h"

namespace triad::tokenizer {
namespace {

// SentencePiece's penalty for an unknown character, below the worst piece.
constexpr double kUnkPenalty = 10.0;

class Unigram : public Model {
 public:
  Unigram(UnigramPieces pieces, std::optional<int32_t> unk_id, bool byte_fallback, Vocab vocab)
      : unk_id_(unk_id),
        byte_fallback_(byte_fallback),
        vocab_(std::move(vocab)),
        instance_id_(NextModelInstanceId()) {
    double min_score = std::numeric_limits<double>::infinity();
    scores_.reserve(pieces.size());
    for (size_t id = 0; id < pieces.size(); ++id) {
      trie_.Insert(pieces[id].first, static_cast<int32_t>(id));
      scores_.push_back(pieces[id].second);
      min_score = std::min(min_score, pieces[id].second);
    }
    unk_score_ = min_score - kUnkPenalty;
  }

  void Tokenize(std::string_view word, std::vector<int32_t>* ids,
                std::vector<std::string>* tokens) const override {
    // Unknown spans keep their text as the token, so the memo keeps tokens too.
    using Memo = WordMemo<std::pair<std::vector<int32_t>, std::vector<std::string>>>;
    const auto* hit = Memo::Find(instance_id_, word);
    std::pair<std::vector<int32_t>, std::vector<std::string>> computed;
    if (hit == nullptr) {
      TokenizeUncached(word, &computed.first, &computed.second);
      hit = &computed;
    }
    ids->insert(ids->end(), hit->first.begin(), hit->first.end());
    if (tokens != nullptr) tokens->insert(tokens->end(), hit->second.begin(), hit->second.end());
    if (hit == &computed) Memo::Insert(instance_id_, word, std::move(computed));
  }
  const Vocab& vocab() const override { return vocab_; }

 private:
  void TokenizeUncached(std::string_view word, std::vector<int32_t>* ids,
                        std::vector<std::string>* tokens) const;
  struct Node {
    int32_t id = -1;
    int64_t starts_at = -1;  // -1: not reached yet
    double score = 0;
  };

  std::vector<Node> Viterbi(std::string_view word) const;
  void EmitPiece(std::string_view piece, int32_t id, std::vector<int32_t>* ids,
                 std::vector<std::string>* tokens) const;

  std::optional<int32_t> unk_id_;
  bool byte_fallback_;
  Vocab vocab_;
  ByteTrie trie_;
  std::vector<double> scores_;
  double unk_score_ = 0;
  uint64_t instance_id_;
};

std::vector<Unigram::Node> Unigram::Viterbi(std::string_view word) const {
  std::vector<Node> best(word.size() + 1);
  best[0].starts_at = 0;
  for (size_t start = 0; start < word.size();) {
    const double base = best[start].score;
    const size_t char_len = Utf8Length(static_cast<unsigned char>(word[start]));
    bool has_single_char = false;
    const auto relax = [&](size_t end, int32_t id, double score) {
      Node& target = best[end];
      if (target.starts_at < 0 || base + score > target.score) {
        target = {id, static_cast<int64_t>(start), base + score};
      }
    };
    trie_.ForEachPrefix(word.substr(start), [&](size_t len, int32_t id) {
      relax(start + len, id, scores_[id]);
      if (len == char_len) has_single_char = true;
    });
    if (!has_single_char && unk_id_) relax(start + char_len, *unk_id_, unk_score_);
    start += char_len;
  }
  return best;
}

void Unigram::EmitPiece(std::string_view piece, int32_t id, std::vector<int32_t>* ids,
                        std::vector<std::string>* tokens) const {
  if (byte_fallback_ && unk_id_ && id == *unk_id_) {
    bool all_bytes = true;
    std::vector<int32_t> byte_ids;
    for (const char c : piece) {
      const auto byte_id = vocab_.Find(ByteFallbackToken(static_cast<unsigned char>(c)));
      all_bytes = all_bytes && byte_id.has_value();
      if (byte_id) byte_ids.push_back(*byte_id);
    }
    if (all_bytes) {
      for (const int32_t b : byte_ids) {
        ids->push_back(b);
        if (tokens != nullptr) tokens->push_back(*vocab_.Token(b));
      }
      return;
    }
  }
  ids->push_back(id);
  if (tokens != nullptr) tokens->emplace_back(piece);
}

void Unigram::TokenizeUncached(std::string_view word, std::vector<int32_t>* ids,
                               std::vector<std::string>* tokens) const {
  const std::vector<Node> best = Viterbi(word);
  // Backtrack from the end; pieces come out reversed, unknown runs are fused.
  std::vector<std::pair<size_t, size_t>> pieces;  // [begin, end)
  std::vector<int32_t> piece_ids;
  for (size_t end = word.size(); end > 0;) {
    const Node& node = best[end];
    if (node.starts_at < 0) break;  // unreachable without unk_id; drop the rest
    const auto begin = static_cast<size_t>(node.starts_at);
    const bool is_unk = unk_id_ && node.id == *unk_id_;
    if (is_unk && !piece_ids.empty() && piece_ids.back() == *unk_id_) {
      pieces.back().first = begin;
    } else {
      pieces.emplace_back(begin, end);
      piece_ids.push_back(node.id);
    }
    end = begin;
  }
  for (size_t i = pieces.size(); i-- > 0;) {
    const auto [begin, end] = pieces[i];
    EmitPiece(word.substr(begin, end - begin), piece_ids[i], ids, tokens);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> MakeUnigram(UnigramPieces pieces,
                                                   std::optional<int32_t> unk_id,
                                                   bool byte_fallback) {
  if (unk_id && (*unk_id < 0 || static_cast<size_t>(*unk_id) >= pieces.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("unk_id ", *unk_id, " is outside the vocabulary of ", pieces.size()));
  }
  Vocab vocab;
  for (size_t id = 0; id < pieces.size(); ++id) {
    // A repeated piece keeps its first id for lookup (HF's token_to_ids), but every id stays.
    if (vocab.Find(pieces[id].first)) continue;
    const absl::Status status = vocab.Add(pieces[id].first, static_cast<int32_t>(id));
    if (!status.ok()) return status;
  }
  return std::unique_ptr<Model>(
      new Unigram(std::move(pieces), unk_id, byte_fallback, std::move(vocab)));
}

}  // namespace triad::tokenizer
