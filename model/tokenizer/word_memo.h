// WordMemo: a per-thread memo of "word -> model output" for one model instance at a time.
// Natural text repeats its words, so the models (BPE, Unigram) skip their search for most
// of them. A Tokenizer is shared and immutable; keeping the memo thread-local needs no locks.
// Thread contract: each thread sees only its own memo; all functions are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace triad::tokenizer {

// A process-unique id for a model instance (addresses can be reused after destruction, ids
// cannot, so a memo never serves a dead model's entries to a new one).
inline uint64_t NextModelInstanceId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

template <typename Value>
class WordMemo {
 public:
  static constexpr size_t kMaxWordBytes = 64;  // longer words are rare and not memoized
  // Bounds memory per thread (~1-2 MB; a server has many threads). A full memo keeps what
  // it has: in natural text the words met first are mostly the frequent ones.
  static constexpr size_t kMaxWords = 1 << 14;

  // The memoized value of `word` for model `owner`, or null.
  static const Value* Find(uint64_t owner, std::string_view word) {
    State& s = ThreadState();
    if (s.owner != owner) return nullptr;
    const auto it = s.words.find(absl::string_view(word.data(), word.size()));
    return it == s.words.end() ? nullptr : &it->second;
  }

  static void Insert(uint64_t owner, std::string_view word, Value value) {
    if (word.size() > kMaxWordBytes) return;
    State& s = ThreadState();
    if (s.owner != owner) {
      s.words.clear();
      s.owner = owner;
    }
    if (s.words.size() < kMaxWords) s.words.emplace(std::string(word), std::move(value));
  }

 private:
  struct State {
    uint64_t owner = 0;
    absl::flat_hash_map<std::string, Value> words;
  };
  static State& ThreadState() {
    thread_local State state;
    return state;
  }
};

}  // namespace triad::tokenizer
