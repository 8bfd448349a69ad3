// Builders for the tokenizer.json components other than the model (normalizer,
// pre_tokenizer, post_processor, decoder). Internal to the JSON loader. A JSON null gives a
// null component; unknown types are Unimplemented with their JSON path.
// Thread contract: stateless functions.
#pragma once

#include <memory>
#include <string_view>

#include "model/tokenizer/decoder.h"
#include "model/tokenizer/json_fields.h"
#include "model/tokenizer/model.h"
#include "model/tokenizer/normalizer.h"
#include "model/tokenizer/post_processor.h"
#include "model/tokenizer/pre_tokenizer.h"

namespace triad::tokenizer {

absl::StatusOr<std::unique_ptr<Normalizer>> LoadNormalizer(const nlohmann::json& j,
                                                           absl::string_view path);
absl::StatusOr<std::unique_ptr<PreTokenizer>> LoadPreTokenizer(const nlohmann::json& j,
                                                               absl::string_view path);
absl::StatusOr<std::unique_ptr<Decoder>> LoadDecoder(const nlohmann::json& j,
                                                     absl::string_view path);
absl::StatusOr<std::unique_ptr<PostProcessor>> LoadPostProcessor(const nlohmann::json& j,
                                                                 absl::string_view path);

}  // namespace triad::tokenizer
