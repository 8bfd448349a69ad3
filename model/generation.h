// Whole-batch decoding on a Model: greedy search and beam search with Hugging Face
// `generate` semantics (left-padded decoder-only prompts, T5 from decoder_start_token_id,
// BeamSearchScorer hypotheses). Stateless functions; each call owns its DecoderState.
#pragma once

#include <ATen/ATen.h>

#include <functional>

#include "absl/status/statusor.h"
#include "model/beam_search.h"
#include "model/model.h"

namespace triad {

struct GenerationOptions {
  int64_t max_new_tokens = 16;       // tokens generated per row; must be >= 1
  int64_t num_beams = 1;             // 1 = greedy search
  int64_t num_return_sequences = 1;  // beams returned per input row (<= num_beams)
  double length_penalty = 1.0;       // beam score = sum_logprobs / generated_len^length_penalty
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
  bool keep_step_logits = false;     // greedy: return the raw logits of every step
  // Called before every decoding step; a non-OK status (a cancelled call, a passed deadline)
  // stops the search and is returned. Unset = never stops early.
  std::function<absl::Status()> check;
  absl::Status Validate() const;
};

// Decoder-only: the prompt. T5: the encoder input (decoding starts at decoder_start_token_id).
struct GenerationInput {
  at::Tensor input_ids;       // [B, T] int64; decoder-only prompts left-padded
  at::Tensor attention_mask;  // [B, T]; undefined = all real
};

struct GenerationOutput {
  // Decoder-only: prompt + generated ids; T5: decoder_start + generated ids. Finished rows are
  // padded with pad_token_id (eos when the model has no pad). [B * num_return_sequences, L].
  at::Tensor sequences;
  at::Tensor token_logprobs;    // greedy: log-softmax of each chosen token [B, steps] float32
  at::Tensor sequences_scores;  // beam: normalised hypothesis score [B * num_return_sequences]
  at::Tensor step_logits;       // greedy with keep_step_logits: [steps, B, V] float32
  int64_t prompt_length = 0;    // columns of `sequences` that precede the generated tokens
};

absl::StatusOr<GenerationOutput> Generate(const Model& model, const GenerationInput& input,
                                          const GenerationOptions& options);

}  // namespace triad
