// The Precompiled normalizer: SentencePiece's compiled normalization rules
// (`precompiled_charsmap`: a Darts double-array trie over UTF-8 keys plus a pool of
// NUL-terminated replacements), applied grapheme by grapheme exactly as HF tokenizers does.
// Thread contract: immutable after construction; Normalize is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/tokenizer/normalizer.h"

namespace triad::tokenizer {

// `charsmap` is the raw blob (not base64). InvalidArgument if its layout is inconsistent.
absl::StatusOr<std::unique_ptr<Normalizer>> MakePrecompiled(std::string charsmap);

}  // namespace triad::tokenizer
