// Fuzz target: the Precompiled normalizer (SentencePiece's compiled charsmap, a double-array
// trie read straight from the checkpoint's bytes). Input: 2 bytes of text length T, then the
// charsmap, then T bytes of text. A charsmap must be accepted or refused with a status, never
// crash; an accepted one must turn valid UTF-8 into valid UTF-8.
#include <cstdint>
#include <string>

#include "model/tokenizer/precompiled.h"
#include "model/tokenizer/unicode.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t rest = size - 2;
  const size_t text_size = (data[0] | data[1] << 8) % (rest + 1);
  const char* bytes = reinterpret_cast<const char*>(data + 2);
  std::string charsmap(bytes, rest - text_size);
  std::string text(bytes + rest - text_size, text_size);
  auto normalizer = triad::tokenizer::MakePrecompiled(std::move(charsmap));
  if (!normalizer.ok()) return 0;
  FUZZ_ACCEPTED();
  if (!triad::tokenizer::ValidateUtf8(text, "text").ok()) return 0;
  (*normalizer)->Normalize(&text);
  FUZZ_CHECK(triad::tokenizer::ValidateUtf8(text, "text").ok(),
             "normalized text is not valid UTF-8");
  return 0;
}
