// What the loader fuzz targets (tokenizer_json, sentencepiece) ask of a load: a refusal has a
// message, and a tokenizer that loads encodes and decodes a few fixed texts.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

inline void CheckLoadedTokenizer(
    const absl::StatusOr<std::unique_ptr<triad::tokenizer::Tokenizer>>& tokenizer) {
  if (!tokenizer.ok()) {
    FUZZ_CHECK(!tokenizer.status().message().empty(), "an error without a message");
    return;
  }
  FUZZ_ACCEPTED();
  for (std::string_view text :
       {"", "Hello world, naïve café! 123 <s> </s> ▁x \t\n", "ab ab ab"}) {
    auto encoding = (*tokenizer)->Encode(text, true);
    FUZZ_CHECK(encoding.ok(), "Encode: %s", std::string(encoding.status().message()).c_str());
    auto decoded = (*tokenizer)->Decode(encoding->ids, false);
    FUZZ_CHECK(decoded.ok(), "Decode: %s", std::string(decoded.status().message()).c_str());
  }
}
