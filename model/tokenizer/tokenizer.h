// Tokenizer: the public tokenizer API of Triad. Loads a Hugging Face tokenizer.json or a
// SentencePiece .model (through the same engines) and encodes/decodes exactly as HF
// `tokenizers` does; IncrementalDecoder turns a stream of generated ids into text.
// No LibTorch.
//
// Rejected at load, with the JSON path: BPE dropout, added tokens with lstrip, rstrip or
// single_word, and component types outside the four families' set (see component_json.cc).
// Ignored: the "truncation" and "padding" sections (the caller decides lengths). Encoding
// has no offsets.
//
// Thread contract: a Tokenizer is immutable after loading; every method is const and safe to
// call from many threads at once. An IncrementalDecoder belongs to one stream (one thread at
// a time) and must not outlive its Tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/tokenizer/encoding.h"

namespace triad::tokenizer {

struct Pipeline;

// Settings transformers takes from tokenizer_config.json when it converts a SentencePiece
// .model; FromDir fills them from the folder, FromSentencePieceFile takes them as given.
struct SentencePieceOptions {
  // Llama layout: legacy=true normalizes with Prepend("▁")+Replace; false uses a Metaspace
  // pre-tokenizer with prepend_scheme "first".
  bool legacy = true;
  bool add_bos_token = true;   // Llama layout: the template starts with bos
  bool add_eos_token = false;  // Llama layout: the template ends with eos
  // T5 layout: number of <extra_id_N> pieces appended to the vocabulary (T5Tokenizer: 100).
  int extra_ids = 0;
  // "llama", "t5" or "" (choose from the model type: BPE -> llama, Unigram -> t5).
  std::string layout;
};

// The generation-free settings of tokenizer_config.json (FromDir only; defaults otherwise).
struct TokenizerConfig {
  // Longest input the model takes, in tokens; 0 = not stated (or transformers' "very large"
  // placeholder).
  int64_t model_max_length = 0;
  // transformers applies CleanUpTokenizationSpaces after decoding when this is set; Decode
  // does not (it returns the raw HF `tokenizers` output).
  bool clean_up_tokenization_spaces = false;
  // As declared; the template in tokenizer.json (or the one built for a .model) already
  // encodes them, so they are informational here.
  bool add_bos_token = false;
  bool add_eos_token = false;
};

// transformers' clean_up_tokenization: " ." -> "." and similar for ? ! , ' n't 'm 's 've 're.
std::string CleanUpTokenizationSpaces(std::string_view text);

class Tokenizer {
 public:
  // Chooses the file the way transformers does: tokenizer.json if present, else
  // tokenizer.model / spiece.model converted with tokenizer_config.json's settings. Special
  // ids come from tokenizer_config.json / special_tokens_map.json, then
  // generation_config.json, then the .model's trainer settings.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromDir(const std::string& model_dir);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonString(std::string_view json);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSentencePieceFile(
      const std::string& path, const SentencePieceOptions& options = {});
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSentencePieceString(
      std::string_view serialized, const SentencePieceOptions& options = {});
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // InvalidArgument if `text` is not valid UTF-8. `add_special_tokens` controls only the
  // post-processor (bos/eos templates); added-token strings in the text always match.
  absl::StatusOr<Encoding> Encode(std::string_view text, bool add_special_tokens) const;
  absl::StatusOr<Encoding> EncodePair(std::string_view a, std::string_view b,
                                      bool add_special_tokens) const;
  // Encode without building token strings (the serving hot path).
  absl::StatusOr<std::vector<int32_t>> EncodeIds(std::string_view text,
                                                 bool add_special_tokens) const;

  // Ids that are in no vocabulary are skipped, as HF does (models often pad their
  // embedding beyond the tokenizer's vocabulary).
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const;

  std::optional<std::string> IdToToken(int32_t id) const;
  std::optional<int32_t> TokenToId(std::string_view token) const;
  bool IsSpecial(int32_t id) const;
  // One past the largest id of the model vocabulary and the added tokens.
  int32_t vocab_size() const;

  // -1 when the tokenizer has none.
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  // Every id that ends generation (generation_config.json may list several); eos_id first.
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  const TokenizerConfig& config() const { return config_; }
  // The file the pipeline came from (for logs), e.g. ".../tokenizer.json"; empty when loaded
  // from a string.
  const std::string& source() const { return source_; }

 private:
  friend class IncrementalDecoder;
  friend class TokenizerLoader;
  std::string DecodeTokens(absl::Span<const int32_t> ids, bool skip_special_tokens) const;
  explicit Tokenizer(std::unique_ptr<Pipeline> pipeline);
  absl::Status EncodeSequence(std::string_view text, int32_t type_id, Encoding* out,
                              bool with_tokens) const;
  void EncodeSegment(std::string text, bool at_origin, int32_t type_id, Encoding* out,
                     bool with_tokens) const;
  void EncodeWords(std::string text, bool at_origin, int32_t type_id, Encoding* out,
                   bool with_tokens) const;
  void SetSpecialIds(int32_t bos, int32_t eos, int32_t pad, std::vector<int32_t> extra_eos);

  std::unique_ptr<Pipeline> pipeline_;
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  std::vector<int32_t> eos_ids_;
  TokenizerConfig config_;
  std::string source_;
};

// Streaming detokenization: fed ids one at a time, returns the text that became final. The
// concatenation of every Push and the Flush equals Decode(all ids); every returned piece is
// valid UTF-8. Held back: text that ends in U+FFFD (an incomplete character that a later
// byte token may complete; a literal U+FFFD at the very end waits for the next id too), a
// run of byte-fallback tokens until a token that is not one (HF decodes the run as a unit,
// so a later byte can turn it all into U+FFFD), and ids that add no text yet (e.g. skipped
// special tokens). Memory is O(ids since the last emitted text), not O(stream).
class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  absl::StatusOr<std::string> Push(int32_t id);
  // Returns whatever is still held (e.g. an incomplete character as U+FFFD) and starts a
  // new stream.
  absl::StatusOr<std::string> Flush();

 private:
  // Whether the last id Decode turns into text is a byte-fallback token (<0xHH>).
  bool EndsInByteRun() const;

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;  // the window: ids_[0, prefix_end_) are already emitted context
  size_t prefix_end_ = 0;
  std::string prefix_text_;  // Decode(ids_[0, prefix_end_)) within the window
};

}  // namespace triad::tokenizer
