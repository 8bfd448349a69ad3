// ByteTrie: a byte-keyed trie mapping strings to int32 values, with common-prefix search.
// Shared by added-token matching and the Unigram lattice.
// Thread contract: build single-threaded with Insert, then read-only and shareable.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace triad::tokenizer {

class ByteTrie {
 public:
  ByteTrie() : values_(1, -1) { first_bytes_.fill(false); }

  // Maps `key` to `value` (a later insert of the same key wins). `value` must be >= 0.
  void Insert(std::string_view key, int32_t value) {
    if (!key.empty()) first_bytes_[static_cast<unsigned char>(key[0])] = true;
    uint32_t node = 0;
    for (const char c : key) {
      const uint64_t edge = Edge(node, c);
      auto it = edges_.find(edge);
      if (it == edges_.end()) {
        it = edges_.emplace(edge, static_cast<uint32_t>(values_.size())).first;
        values_.push_back(-1);
      }
      node = it->second;
    }
    values_[node] = value;
  }

  // Calls fn(length, value) for every key that is a prefix of `text`, shortest first.
  template <typename Fn>
  void ForEachPrefix(std::string_view text, Fn&& fn) const {
    uint32_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      const auto it = edges_.find(Edge(node, text[i]));
      if (it == edges_.end()) return;
      node = it->second;
      if (values_[node] >= 0) fn(i + 1, values_[node]);
    }
  }

  // True if some key starts with byte `c` (a cheap pre-filter for scanning).
  bool HasFirstByte(char c) const { return first_bytes_[static_cast<unsigned char>(c)]; }

 private:
  static uint64_t Edge(uint32_t node, char c) {
    return (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
  }

  absl::flat_hash_map<uint64_t, uint32_t> edges_;  // (node, byte) -> child node
  std::vector<int32_t> values_;                    // per node; -1 = no key ends here
  std::array<bool, 256> first_bytes_;              // lead bytes of the keys (a fast filter)
};

}  // namespace triad::tokenizer
