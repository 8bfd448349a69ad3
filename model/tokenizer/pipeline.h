// Pipeline: the components a tokenizer.json describes, as built by the JSON loader. Internal
// to triad_tokenizer; Tokenizer owns one.
// Thread contract: immutable after LoadPipeline; shareable.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "absl/status/statusor.h"
#include "model/tokenizer/added_vocabulary.h"
#include "model/tokenizer/decoder.h"
#include "model/tokenizer/model.h"
#include "model/tokenizer/normalizer.h"
#include "model/tokenizer/post_processor.h"
#include "model/tokenizer/pre_tokenizer.h"

namespace triad::tokenizer {

struct Pipeline {
  AddedVocabulary added;
  std::unique_ptr<Normalizer> normalizer;       // null: none
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // null: the segment is one word
  std::unique_ptr<Model> model;                 // never null
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;  // null: tokens joined by spaces
};

// Builds the pipeline from a parsed tokenizer.json. Errors are InvalidArgument (malformed) or
// Unimplemented (a component type this library does not support), and name the JSON path,
// e.g. "tokenizer.json: /pre_tokenizer/pretokenizers/0/pattern: ...".
absl::StatusOr<Pipeline> LoadPipeline(const nlohmann::json& root);

}  // namespace triad::tokenizer
