// Fuzz target: Tokenizer::FromJsonString on arbitrary bytes (seeded with small tokenizer.json
// files of every model kind). A file must load or give a status, never crash or throw; one
// that loads must encode and decode a fixed text.
#include <cstdint>
#include <string_view>

#include "model/tokenizer/tokenizer.h"
#include "tests/fuzz/loaded_tokenizer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  CheckLoadedTokenizer(triad::tokenizer::Tokenizer::FromJsonString(json));
  return 0;
}
