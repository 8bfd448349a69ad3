// AddedVocabulary: the tokenizer.json `added_tokens` (special and user tokens). They are found
// in the input before the normalizer runs (leftmost, then longest match) and cut it into
// segments; tokens marked `normalized` are matched again inside each normalized segment.
// Thread contract: built single-threaded, then immutable and shareable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "model/tokenizer/byte_trie.h"

namespace triad::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;     // dropped by decode(skip_special_tokens=true)
  bool normalized = false;  // matched in normalized text rather than raw text
};

// A piece of input: an added token (id >= 0) or plain text to run through the pipeline.
struct Segment {
  size_t begin, end;  // byte range in the text that was split
  int32_t id;         // -1 for plain text
};

class AddedVocabulary {
 public:
  // `normalized_content` is the token's content after the normalizer (only used when
  // token.normalized). InvalidArgument on an empty content.
  absl::Status Add(const AddedToken& token, std::string normalized_content);

  // Splits `text` on tokens of the raw (`normalized` = false) or normalized kind.
  std::vector<Segment> Split(std::string_view text, bool normalized) const;

  std::optional<int32_t> Find(std::string_view content) const;
  const std::string* Token(int32_t id) const;
  bool IsSpecial(int32_t id) const { return special_ids_.contains(id); }
  bool HasNormalized() const { return has_normalized_; }
  int32_t max_id() const { return max_id_; }

 private:
  ByteTrie raw_trie_, normalized_trie_;  // content -> id
  absl::flat_hash_map<std::string, int32_t> content_to_id_;
  absl::flat_hash_map<int32_t, std::string> id_to_content_;
  absl::flat_hash_set<int32_t> special_ids_;
  bool has_normalized_ = false;
  int32_t max_id_ = -1;
};

}  // namespace triad::tokenizer
