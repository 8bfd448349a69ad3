#include "model/tokenizer/added_vocabulary.h"

#include <algorithm>

namespace triad::tokenizer {

absl::Status AddedVocabulary::Add(const AddedToken& token, std::string normalized_content) {
  if (token.content.empty()) return absl::InvalidArgumentError("added token has empty content");
  if (token.normalized) {
    has_normalized_ = true;
    if (!normalized_content.empty()) normalized_trie_.Insert(normalized_content, token.id);
  } else {
    raw_trie_.Insert(token.content, token.id);
  }
  content_to_id_[token.content] = token.id;
  id_to_content_[token.id] = token.content;
  if (token.special) special_ids_.insert(token.id);
  max_id_ = std::max(max_id_, token.id);
  return absl::OkStatus();
}

std::vector<Segment> AddedVocabulary::Split(std::string_view text, bool normalized) const {
  const ByteTrie& trie = normalized ? normalized_trie_ : raw_trie_;
  std::vector<Segment> segments;
  size_t plain_begin = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t match_len = 0;
    int32_t match_id = -1;
    if (trie.HasFirstByte(text[pos])) {
      trie.ForEachPrefix(text.substr(pos), [&](size_t len, int32_t id) {
        match_len = len;  // prefixes come shortest first; keep the longest
        match_id = id;
      });
    }
    if (match_len == 0) {
      ++pos;
      continue;
    }
    if (pos > plain_begin) segments.push_back({plain_begin, pos, -1});
    segments.push_back({pos, pos + match_len, match_id});
    pos += match_len;
    plain_begin = pos;
  }
  if (plain_begin < text.size()) segments.push_back({plain_begin, text.size(), -1});
  return segments;
}

std::optional<int32_t> AddedVocabulary::Find(std::string_view content) const {
  const auto it = content_to_id_.find(absl::string_view(content.data(), content.size()));
  if (it == content_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* AddedVocabulary::Token(int32_t id) const {
  const auto it = id_to_content_.find(id);
  return it == id_to_content_.end() ? nullptr : &it->second;
}

}  // namespace triad::tokenizer
