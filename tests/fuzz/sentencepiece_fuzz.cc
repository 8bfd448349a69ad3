// Fuzz target: Tokenizer::FromSentencePieceString on arbitrary bytes (seeded with the Llama
// and T5 .model files of tests/data/tokenizers). Byte 0 picks the conversion (Llama legacy,
// Llama non-legacy, T5 with 100 extra ids, or by model type); the rest is the serialized
// ModelProto. A file must load or give a status, never crash; one that loads must encode and
// decode a fixed text.
#include <cstdint>
#include <string_view>

#include "model/tokenizer/tokenizer.h"
#include "tests/fuzz/loaded_tokenizer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  triad::tokenizer::SentencePieceOptions options;
  switch (data[0] % 4) {
    case 0:
      options.layout = "llama";
      break;
    case 1:
      options.layout = "llama";
      options.legacy = false;
      break;
    case 2:
      options.layout = "t5";
      options.extra_ids = 100;
      break;
    default:
      break;
  }
  const std::string_view model(reinterpret_cast<const char*>(data + 1), size - 1);
  CheckLoadedTokenizer(triad::tokenizer::Tokenizer::FromSentencePieceString(model, options));
  return 0;
}
