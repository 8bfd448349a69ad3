// BPE as HF tokenizers runs it: characters (with prefix/suffix, byte fallback, unk fusing) are
// merged by a min-heap keyed on (merge rank, position), so a word of n characters costs
// O(n log n) rather than the O(n^2) of rescanning for the best pair after every merge.
// Results are memoized per thread (word_memo.h).
#include <algorithm>
#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/tokenizer/model.h"
#include "model/tokenizer/unicode.h"
#include "model/tokenizer/word_memo.h"

namespace triad::tokenizer {

namespace {

struct Symbol {
  int32_t id;  // -1 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

struct MergeCandidate {
  uint32_t rank;
  int32_t pos;
  int32_t new_id;
  // std::priority_queue is a max-heap: "less" means lower priority (higher rank, later pos).
  bool operator<(const MergeCandidate& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

// Words longer than this are cut at word boundaries when that is provably exact.
constexpr size_t kSplitLongWordBytes = 64;
constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581

inline uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class Bpe : public Model {
 public:
  Bpe(Vocab vocab, BpeOptions options)
      : vocab_(std::move(vocab)),
        options_(std::move(options)),
        instance_id_(NextModelInstanceId()) {}

  absl::Status AddMerges(const MergeList& merges) {
    const size_t prefix_len = options_.continuing_subword_prefix.size();
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      const auto id_a = vocab_.Find(a), id_b = vocab_.Find(b);
      if (!id_a || !id_b) {
        return absl::InvalidArgumentError(absl::StrCat("merge ", rank, " (\"", a, "\", \"", b,
                                                       "\") uses a token not in the vocabulary"));
      }
      // With a continuing-subword prefix, the right part loses its prefix when merged (HF
      // cuts prefix-length bytes whatever they are).
      const std::string merged = a + b.substr(std::min(prefix_len, b.size()));
      const auto id_merged = vocab_.Find(merged);
      if (!id_merged) {
        return absl::InvalidArgumentError(absl::StrCat("merge ", rank, " produces \"", merged,
                                                       "\", which is not in the vocabulary"));
      }
      // A repeated pair keeps its last rank, as HF builds its map.
      merges_.insert_or_assign(PairKey(*id_a, *id_b),
                               std::make_pair(static_cast<uint32_t>(rank), *id_merged));
    }
    if (options_.unk_token && !vocab_.Find(*options_.unk_token)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unk_token \"", *options_.unk_token, "\" is not in the vocabulary"));
    }
    split_at_metaspace_ = ComputeSplitAtMetaspace();
    return absl::OkStatus();
  }

  void Tokenize(std::string_view word, std::vector<int32_t>* ids,
                std::vector<std::string>* tokens) const override {
    const size_t first = ids->size();
    if (split_at_metaspace_ && word.size() > kSplitLongWordBytes) {
      ForEachMetaspaceWord(word, [&](std::string_view part) { TokenizeCached(part, ids); });
    } else {
      TokenizeCached(word, ids);
    }
    if (tokens != nullptr) {
      for (size_t i = first; i < ids->size(); ++i) tokens->push_back(*vocab_.Token((*ids)[i]));
    }
  }

  const Vocab& vocab() const override { return vocab_; }

 private:
  void TokenizeCached(std::string_view word, std::vector<int32_t>* ids) const {
    using Memo = WordMemo<std::vector<int32_t>>;
    if (const std::vector<int32_t>* hit = Memo::Find(instance_id_, word)) {
      ids->insert(ids->end(), hit->begin(), hit->end());
      return;
    }
    // The memo is checked first: it is small and hot, the vocabulary map is neither.
    const size_t first = ids->size();
    const auto whole = options_.ignore_merges ? vocab_.Find(word) : std::nullopt;
    if (whole) {
      ids->push_back(*whole);
    } else {
      TokenizeUncached(word, ids);
    }
    Memo::Insert(instance_id_, word, std::vector<int32_t>(ids->begin() + first, ids->end()));
  }

  void TokenizeUncached(std::string_view word, std::vector<int32_t>* ids) const {
    std::vector<Symbol> symbols = InitialSymbols(word);
    MergeAll(&symbols);
    for (const Symbol& s : symbols) {
      if (s.id >= 0) ids->push_back(s.id);
    }
  }

  // Calls fn on the pieces of `word` cut before each run of U+2581 that follows another
  // character (SentencePiece-style words).
  template <typename Fn>
  static void ForEachMetaspaceWord(std::string_view word, Fn fn) {
    size_t start = 0;
    for (size_t at = word.find(kMetaspace, 1); at != std::string_view::npos;
         at = word.find(kMetaspace, at + kMetaspace.size())) {
      const bool inside_run =
          at >= kMetaspace.size() &&
          word.compare(at - kMetaspace.size(), kMetaspace.size(), kMetaspace) == 0;
      if (inside_run) continue;
      fn(word.substr(start, at - start));
      start = at;
    }
    fn(word.substr(start));
  }

  // Cutting a long word before "▁" (after another character) is exact when no merge can
  // join across that point: no token contains another character followed by "▁", there is
  // no prefix/suffix, "▁" itself is a token (so no unknown run spans the cut), and
  // ignore_merges is off.
  bool ComputeSplitAtMetaspace() const {
    // ignore_merges looks the whole word up, which a cut word cannot do.
    if (options_.ignore_merges || !options_.continuing_subword_prefix.empty() ||
        !options_.end_of_word_suffix.empty() || !vocab_.Find(kMetaspace)) {
      return false;
    }
    for (int32_t id = 0; id < vocab_.size(); ++id) {
      const std::string* token = vocab_.Token(id);
      if (token == nullptr) continue;
      for (size_t at = token->find(kMetaspace, 1); at != std::string::npos;
           at = token->find(kMetaspace, at + 1)) {
        if (at < kMetaspace.size() ||
            token->compare(at - kMetaspace.size(), kMetaspace.size(), kMetaspace) != 0) {
          return false;
        }
      }
    }
    return true;
  }

  static void Push(std::vector<Symbol>* symbols, int32_t id) {
    const auto n = static_cast<int32_t>(symbols->size());
    if (n > 0) (*symbols)[n - 1].next = n;
    symbols->push_back({id, n - 1, -1});
  }

  std::vector<Symbol> InitialSymbols(std::string_view word) const;
  // Pushes the <0xXX> tokens of `piece` if all exist. HF adds them without flushing a
  // pending unknown first; InitialSymbols keeps that order.
  bool PushBytes(const std::string& piece, std::vector<Symbol>* symbols) const {
    std::vector<int32_t> byte_ids;
    for (const char c : piece) {
      const auto id = vocab_.Find(ByteFallbackToken(static_cast<unsigned char>(c)));
      if (!id) return false;
      byte_ids.push_back(*id);
    }
    for (const int32_t id : byte_ids) Push(symbols, id);
    return true;
  }
  void MergeAll(std::vector<Symbol>* symbols) const;

  Vocab vocab_;
  BpeOptions options_;
  absl::flat_hash_map<uint64_t, std::pair<uint32_t, int32_t>> merges_;  // pair -> rank, new id
  uint64_t instance_id_;
  bool split_at_metaspace_ = false;
};

std::vector<Symbol> Bpe::InitialSymbols(std::string_view word) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  // A pending unknown (plain fields: GCC 12 misreports std::optional here).
  bool has_unk = false;
  int32_t unk_id = -1;
  std::string piece;
  for (size_t pos = 0; pos < word.size();) {
    const size_t begin = pos;
    pos += Utf8Length(static_cast<unsigned char>(word[pos]));
    const auto len = static_cast<uint32_t>(pos - begin);
    piece.clear();
    if (begin > 0) piece.append(options_.continuing_subword_prefix);
    piece.append(word.substr(begin, len));
    if (pos == word.size()) piece.append(options_.end_of_word_suffix);
    if (const auto id = vocab_.Find(piece)) {
      if (has_unk) Push(&symbols, unk_id);
      has_unk = false;
      Push(&symbols, *id);
      continue;
    }
    if (options_.byte_fallback && PushBytes(piece, &symbols)) continue;
    if (!options_.unk_token) continue;
    if (!(has_unk && options_.fuse_unk)) {
      if (has_unk) Push(&symbols, unk_id);
      has_unk = true;
      unk_id = *vocab_.Find(*options_.unk_token);
    }
  }
  if (has_unk) Push(&symbols, unk_id);
  return symbols;
}

void Bpe::MergeAll(std::vector<Symbol>* symbols_ptr) const {
  std::vector<Symbol>& symbols = *symbols_ptr;
  // The initial candidates are heapified at once (O(n)); long words make this matter.
  std::vector<MergeCandidate> initial;
  initial.reserve(symbols.size());
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) {
    const auto it = merges_.find(PairKey(symbols[i].id, symbols[i + 1].id));
    if (it != merges_.end()) initial.push_back({it->second.first, i, it->second.second});
  }
  std::priority_queue<MergeCandidate> queue(std::less<MergeCandidate>(), std::move(initial));
  const auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    const auto it = merges_.find(PairKey(symbols[left].id, symbols[right].id));
    if (it != merges_.end()) queue.push({it->second.first, left, it->second.second});
  };
  while (!queue.empty()) {
    const MergeCandidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Entries go stale when a neighbour merged since they were queued.
    const auto it = merges_.find(PairKey(left.id, right.id));
    if (it == merges_.end() || it->second.second != top.new_id) continue;
    left.id = top.new_id;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> MakeBpe(Vocab vocab, const MergeList& merges,
                                               BpeOptions options) {
  auto bpe = std::make_unique<Bpe>(std::move(vocab), std::move(options));
  const absl::Status status = bpe->AddMerges(merges);
  if (!status.ok()) return status;
  return std::unique_ptr<Model>(std::move(bpe));
}

}  // namespace triad::tokenizer
