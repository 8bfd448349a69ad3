// Fuzz target: Encode / EncodePair / Decode / IncrementalDecoder of the real tokenizers in
// tests/data/tokenizers (HF tokenizer.json files and SentencePiece .model conversions).
//
// Input: byte 0 picks the tokenizer, byte 1 holds flags, the rest is the text. Properties:
// - Encode succeeds exactly when the text is valid UTF-8 (else INVALID_ARGUMENT);
// - EncodeIds gives Encode's ids, and every id is inside the vocabulary;
// - Decode of those ids succeeds with valid UTF-8, and the IncrementalDecoder's pieces (each
//   valid UTF-8) concatenate to exactly Decode's text, with and without special tokens;
// - the same holds for the raw input bytes read as a list of arbitrary ids.
// Data: TRIAD_FUZZ_TOKENIZERS (a folder of tokenizer folders), else the build's copy.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/unicode.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using triad::tokenizer::IncrementalDecoder;
using triad::tokenizer::SentencePieceOptions;
using triad::tokenizer::Tokenizer;

std::vector<std::unique_ptr<Tokenizer>> LoadTokenizers() {
  const char* env = std::getenv("TRIAD_FUZZ_TOKENIZERS");
  const std::string root = env != nullptr ? env : TRIAD_TOKENIZER_DATA_DIR;
  std::vector<std::unique_ptr<Tokenizer>> out;
  for (const char* name : {"gpt1-tiny", "llama-tiny", "llama2", "llama3", "t5-tiny"}) {
    auto t = Tokenizer::FromDir(root + "/" + name);
    FUZZ_CHECK(t.ok(), "loading %s: %s", name, std::string(t.status().message()).c_str());
    out.push_back(*std::move(t));
  }
  SentencePieceOptions llama;
  llama.layout = "llama";
  SentencePieceOptions t5;
  t5.layout = "t5";
  t5.extra_ids = 100;
  for (const auto& [file, options] : {std::pair{"/llama-tiny/tokenizer.model", llama},
                                      std::pair{"/t5-tiny/spiece.model", t5}}) {
    auto t = Tokenizer::FromSentencePieceFile(root + file, options);
    FUZZ_CHECK(t.ok(), "loading %s: %s", file, std::string(t.status().message()).c_str());
    out.push_back(*std::move(t));
  }
  return out;
}

const std::vector<std::unique_ptr<Tokenizer>>& Tokenizers() {
  static const auto* tokenizers = new std::vector<std::unique_ptr<Tokenizer>>(LoadTokenizers());
  return *tokenizers;
}

bool IsUtf8(std::string_view text) { return triad::tokenizer::ValidateUtf8(text, "text").ok(); }

// Decode and the incremental decoder agree on `ids`, and both give valid UTF-8.
void CheckDecode(const Tokenizer& t, const std::vector<int32_t>& ids) {
  for (bool skip : {false, true}) {
    auto whole = t.Decode(ids, skip);
    FUZZ_CHECK(whole.ok(), "Decode: %s", std::string(whole.status().message()).c_str());
    FUZZ_CHECK(IsUtf8(*whole), "Decode gave invalid UTF-8");
    IncrementalDecoder stream(t, skip);
    std::string joined;
    for (int32_t id : ids) {
      auto piece = stream.Push(id);
      FUZZ_CHECK(piece.ok(), "Push(%d): %s", id, std::string(piece.status().message()).c_str());
      FUZZ_CHECK(IsUtf8(*piece), "Push(%d) gave invalid UTF-8", id);
      joined += *piece;
    }
    auto rest = stream.Flush();
    FUZZ_CHECK(rest.ok(), "Flush: %s", std::string(rest.status().message()).c_str());
    joined += *rest;
    FUZZ_CHECK(joined == *whole, "incremental [%s] != Decode [%s] (skip=%d, source %s)",
               absl::BytesToHexString(joined).c_str(),
               absl::BytesToHexString(*whole).c_str(), skip, t.source().c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const auto& tokenizers = Tokenizers();
  const Tokenizer& t = *tokenizers[data[0] % tokenizers.size()];
  const bool add_special = data[1] & 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  auto encoding = t.Encode(text, add_special);
  FUZZ_CHECK(encoding.ok() == IsUtf8(text), "Encode ok=%d but UTF-8 validity=%d: %s",
             encoding.ok(), IsUtf8(text), std::string(encoding.status().message()).c_str());
  if (encoding.ok()) {
    FUZZ_ACCEPTED();
    auto ids = t.EncodeIds(text, add_special);
    FUZZ_CHECK(ids.ok() && *ids == encoding->ids, "EncodeIds differs from Encode");
    FUZZ_CHECK(encoding->tokens.size() == encoding->ids.size(), "tokens and ids differ in size");
    for (int32_t id : encoding->ids) {
      FUZZ_CHECK(id >= 0 && id < t.vocab_size(), "id %d outside [0, %d)", id, t.vocab_size());
    }
    CheckDecode(t, encoding->ids);
    // A pair split at a character boundary in the middle.
    size_t mid = text.size() / 2;
    while (mid < text.size() && (static_cast<uint8_t>(text[mid]) & 0xC0) == 0x80) ++mid;
    auto pair = t.EncodePair(text.substr(0, mid), text.substr(mid), add_special);
    FUZZ_CHECK(pair.ok(), "EncodePair: %s", std::string(pair.status().message()).c_str());
    FUZZ_CHECK(pair->type_ids.size() == pair->ids.size(), "type_ids and ids differ in size");
  } else {
    FUZZ_CHECK(encoding.status().code() == absl::StatusCode::kInvalidArgument,
               "Encode failed with %s", encoding.status().ToString().c_str());
  }

  // The input bytes as arbitrary ids, some past the vocabulary (Decode skips those).
  std::vector<int32_t> ids;
  for (size_t i = 2; i + 1 < size; i += 2) {
    ids.push_back(static_cast<int32_t>((data[i] | data[i + 1] << 8) % (t.vocab_size() + 8)));
  }
  CheckDecode(t, ids);
  return 0;
}
