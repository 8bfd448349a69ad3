// Fuzz target: ParseModelConfig on an arbitrary config.json (seeded with the fixture models'
// configs). A config must parse or give a status naming the file, never crash or throw; one
// that parses must have the shape the model code divides and indexes by: positive sizes,
// heads that divide into kv groups, and one label name per label.
#include <cstdint>
#include <string>

#include "model/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  auto config = triad::ParseModelConfig(json, "", "fuzz/config.json");
  if (!config.ok()) {
    FUZZ_CHECK(config.status().message().find("fuzz/config.json") != std::string::npos,
               "error does not name the file: %s", std::string(config.status().message()).c_str());
    return 0;
  }
  FUZZ_ACCEPTED();
  const triad::ModelConfig& c = *config;
  FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.num_layers > 0 && c.num_heads > 0 &&
                 c.num_kv_heads > 0 && c.head_dim > 0 && c.intermediate_size > 0,
             "a non-positive size");
  FUZZ_CHECK(c.num_heads % c.num_kv_heads == 0, "%lld heads in %lld kv groups",
             static_cast<long long>(c.num_heads), static_cast<long long>(c.num_kv_heads));
  FUZZ_CHECK(c.max_positions >= 0, "negative context length");
  FUZZ_CHECK(static_cast<int64_t>(c.id2label.size()) == c.num_labels, "id2label size");
  if (c.is_encoder_decoder()) {
    FUZZ_CHECK(c.num_decoder_layers > 0 && c.relative_attention_num_buckets > 0,
               "T5 decoder layers or buckets");
  }
  return 0;
}
