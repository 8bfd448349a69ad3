#include "model/tokenizer/precompiled.h"

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"

namespace triad::tokenizer {
namespace {

// Darts-clone unit accessors (the trie format SentencePiece writes).
inline bool HasLeaf(uint32_t unit) { return ((unit >> 8) & 1) != 0; }
inline uint32_t Value(uint32_t unit) { return unit & ((1u << 31) - 1); }
inline uint32_t Label(uint32_t unit) { return unit & ((1u << 31) | 0xFF); }
inline uint32_t Offset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }

class Precompiled : public Normalizer {
 public:
  Precompiled(std::vector<uint32_t> trie, std::string pool)
      : trie_(std::move(trie)), pool_(std::move(pool)) {}

  void Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    size_t pos = 0;
    for (const size_t len : GraphemeLengths(*text)) {
      AppendGrapheme(std::string_view(*text).substr(pos, len), &out);
      pos += len;
    }
    *text = std::move(out);
  }

 private:
  // HF's rule (mirroring SentencePiece's quirks): a grapheme shorter than 6 bytes is looked
  // up whole; otherwise, or without a rule, each character is looked up alone. A lookup
  // uses the *shortest* key that prefixes the chunk, even if it covers only part of it.
  void AppendGrapheme(std::string_view grapheme, std::string* out) const {
    if (grapheme.size() < 6 && Transform(grapheme, out)) return;
    for (size_t pos = 0; pos < grapheme.size();) {
      const size_t n = Utf8Length(static_cast<unsigned char>(grapheme[pos]));
      const std::string_view part = grapheme.substr(pos, n);
      if (!Transform(part, out)) out->append(part);
      pos += n;
    }
  }

  // The pool is valid UTF-8 (checked at load) and a replacement runs to a NUL or the pool's
  // end, so one that starts on a character boundary is valid UTF-8 too. A rule pointing
  // inside a character (only a corrupt charsmap has one; HF's Rust code would panic on it)
  // counts as no rule.
  bool Transform(std::string_view chunk, std::string* out) const {
    const int64_t index = FirstPrefixValue(chunk);
    if (index < 0 || static_cast<size_t>(index) >= pool_.size()) return false;
    if ((static_cast<unsigned char>(pool_[static_cast<size_t>(index)]) & 0xC0) == 0x80) {
      return false;
    }
    const char* start = pool_.data() + index;
    out->append(start, strnlen(start, pool_.size() - static_cast<size_t>(index)));
    return true;
  }

  int64_t FirstPrefixValue(std::string_view key) const {
    size_t node = 0;
    if (trie_.empty()) return -1;
    node ^= Offset(trie_[0]);
    for (const char ch : key) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == 0) return -1;
      node ^= c;
      if (node >= trie_.size()) return -1;
      const uint32_t unit = trie_[node];
      if (Label(unit) != c) return -1;
      node ^= Offset(unit);
      if (node >= trie_.size()) return -1;
      if (HasLeaf(unit)) return Value(trie_[node]);
    }
    return -1;
  }

  std::vector<uint32_t> trie_;
  std::string pool_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> MakePrecompiled(std::string charsmap) {
  if (charsmap.size() < 4) {
    return absl::InvalidArgumentError("precompiled_charsmap is shorter than its 4-byte header");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(charsmap.data());
  const uint32_t trie_bytes =
      bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (static_cast<uint32_t>(bytes[3]) << 24);
  if (trie_bytes % 4 != 0 || trie_bytes > charsmap.size() - 4) {
    return absl::InvalidArgumentError(absl::StrCat("precompiled_charsmap declares a trie of ",
                                                   trie_bytes, " bytes in a blob of ",
                                                   charsmap.size()));
  }
  std::vector<uint32_t> trie(trie_bytes / 4);
  for (size_t i = 0; i < trie.size(); ++i) {
    const unsigned char* p = bytes + 4 + 4 * i;
    trie[i] = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  }
  std::string pool = charsmap.substr(4 + trie_bytes);
  TRIAD_RETURN_IF_ERROR(ValidateUtf8(pool, "precompiled_charsmap replacement pool"));
  return std::unique_ptr<Normalizer>(new Precompiled(std::move(trie), std::move(pool)));
}

}  // namespace triad::tokenizer
