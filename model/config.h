// ModelConfig: the architecture hyper-parameters of a checkpoint, parsed from a Hugging Face
// `config.json` (+ `generation_config.json`) with the defaults transformers applies to keys that
// `save_pretrained` leaves out. No LibTorch. Immutable once parsed; safe to share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace triad {

enum class Family { kGpt1, kT5, kLlama };

// "gpt1", "t5", "llama".
const char* FamilyName(Family family);

// Which head a checkpoint was saved with (from `architectures[0]`).
enum class HeadKind {
  kLanguageModel,           // *LMHeadModel, *ForCausalLM, *ForConditionalGeneration, base models
  kSequenceClassification,  // OpenAIGPTForSequenceClassification
  kDoubleHeads,             // OpenAIGPTDoubleHeadsModel (LM + multiple-choice head)
};

// Rotary position embedding frequency scaling (Llama `rope_scaling`).
struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  double factor = 1.0;                          // linear and llama3
  double low_freq_factor = 1.0;                 // llama3
  double high_freq_factor = 4.0;                // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
  Family family = Family::kLlama;
  HeadKind head = HeadKind::kLanguageModel;
  std::string model_type;    // as written: "openai-gpt", "t5", "llama"
  std::string architecture;  // architectures[0], or "" when absent

  // Shared shape.
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;        // n_embd / d_model / hidden_size
  int64_t num_layers = 0;         // decoder-only layers; T5 encoder layers
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;       // == num_heads unless GQA (Llama)
  int64_t head_dim = 0;           // per-head width (T5 d_kv)
  int64_t intermediate_size = 0;  // FF inner width (GPT-1: 4 * n_embd; T5: d_ff)
  int64_t max_positions = 0;      // context length: n_positions / max_position_embeddings; 0 = unbounded (T5)
  double norm_eps = 1e-5;
  std::string activation;         // "gelu_new", "relu", "silu", "gelu"
  bool tie_word_embeddings = true;

  // T5.
  int64_t num_decoder_layers = 0;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  bool gated_ff = false;  // feed_forward_proj "gated-*" (T5 v1.1)

  // Llama.
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;
  bool mlp_bias = false;

  // Classification heads (GPT-1).
  int64_t num_labels = 2;
  std::vector<std::string> id2label;  // size num_labels; "LABEL_i" when not written

  // Special tokens (-1 = none). generation_config.json overrides config.json, as in HF.
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;
  int64_t decoder_start_token_id = -1;  // T5

  bool is_encoder_decoder() const { return family == Family::kT5; }
  // Hidden width of the attention projections (num_heads * head_dim).
  int64_t attention_width() const { return num_heads * head_dim; }
};

// Parses `<dir>/config.json` and, when present, `<dir>/generation_config.json`. Errors name the
// file and the key (unknown model_type, wrong JSON type, inconsistent shapes, unsupported
// rope_scaling...).
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

// Same from JSON text (generation_json may be empty). `source` names the file in errors.
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& config_json,
                                             const std::string& generation_json,
                                             const std::string& source);

// INVALID_ARGUMENT "<field>: token id X outside the vocabulary [0, vocab_size)" for the first
// id outside it; OK otherwise (also when `ids` is empty).
absl::Status CheckTokenIds(const std::vector<int64_t>& ids, int64_t vocab_size,
                           const std::string& field);

}  // namespace triad
