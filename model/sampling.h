// Sampling parameters, their validation, and the per-request sampler chain (penalties,
// temperature, top-k, top-p, min-p, typical-p, then a draw from the request's own RNG).
// A Sampler belongs to one request and is used by one thread; because it reads only its own
// logits row and its own RNG, a seeded request samples the same tokens alone or in any batch.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"

namespace triad {

struct SamplingParams {
  int64_t max_new_tokens = 16;      // tokens to generate; >= 1
  int64_t min_new_tokens = 0;       // eos and stop tokens are suppressed before this many
  double temperature = 1.0;         // 0 = greedy (argmax); > 0 scales logits
  int64_t top_k = 0;                // keep the k most likely tokens; 0 = off
  double top_p = 1.0;               // nucleus mass in (0, 1]; 1 = off
  double min_p = 0.0;               // drop tokens below min_p * p(top); [0, 1); 0 = off
  double typical_p = 1.0;           // locally typical mass in (0, 1]; 1 = off
  double repetition_penalty = 1.0;  // HF semantics over prompt + generated ids; > 0; 1 = off
  double presence_penalty = 0.0;    // OpenAI semantics over generated ids; [-2, 2]
  double frequency_penalty = 0.0;   // OpenAI semantics over generated ids; [-2, 2]
  bool has_seed = false;            // use `seed`; otherwise a random seed per request
  uint64_t seed = 0;
  bool ignore_eos = false;          // keep generating through eos
  std::vector<int64_t> stop_token_ids;  // finish (reason stop) when one is generated
  int64_t top_logprobs = 0;         // alternatives to report per token; [0, 20]
  bool logprobs = true;             // fill SampledToken::logprob (triadd: only when asked)

  // INVALID_ARGUMENT naming the first bad field.
  absl::Status Validate() const;
};

struct SampledToken {
  int64_t token_id = 0;
  float logprob = 0;  // log-softmax of the model's raw logits (before any processing); 0
                      // unless SamplingParams::logprobs or top_logprobs
  std::vector<std::pair<int64_t, float>> top_logprobs;  // best alternatives, raw log-probs
};

class Sampler {
 public:
  // `eos_ids` are suppressed while fewer than min_new_tokens have been generated.
  Sampler(const SamplingParams& params, std::vector<int64_t> eos_ids);

  // Chooses the next token from `logits` (float32 [V], any device). `context` is the prompt
  // followed by the tokens generated so far; `num_generated` how many of them were generated.
  SampledToken Sample(const at::Tensor& logits, const std::vector<int64_t>& context,
                      int64_t num_generated);

 private:
  at::Tensor Process(at::Tensor logits, const std::vector<int64_t>& context,
                     int64_t num_generated) const;
  // Greedy with nothing for Process to change at `num_generated` (no penalty, no suppression):
  // the argmax of the raw logits.
  bool PlainGreedy(int64_t num_generated) const;

  SamplingParams params_;
  std::vector<int64_t> eos_ids_;
  std::mt19937_64 rng_;
};

}  // namespace triad
