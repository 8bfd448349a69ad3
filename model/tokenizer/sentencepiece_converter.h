// Converts a SentencePiece .model into the tokenizer.json that transformers' converters
// (LlamaConverter for BPE models, T5Converter for Unigram models) would write, so that the
// .model path runs the very same pipeline as tokenizer.json.
// Thread contract: stateless function.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/tokenizer/tokenizer.h"

namespace triad::tokenizer {

struct SentencePieceConversion {
  nlohmann::json tokenizer_json;
  // From the trainer settings; -1 when the model has none.
  int32_t bos_id = -1, eos_id = -1, pad_id = -1, unk_id = -1;
};

// `added_tokens_decoder`: tokenizer_config.json's map of extra added tokens (may be null).
// InvalidArgument if `serialized` is not a ModelProto or lacks pieces.
absl::StatusOr<SentencePieceConversion> ConvertSentencePiece(
    std::string_view serialized, const SentencePieceOptions& options,
    const nlohmann::json& added_tokens_decoder);

}  // namespace triad::tokenizer
