// Candidate scoring: the log-likelihood of given continuations (decoder-only models) or
// decoder targets (T5) under teacher forcing, for many items at once. This is how Classify
// ranks label strings and choices, the way evaluation harnesses do. The context of each item
// is computed once (decoder-only: the prompt's KV cache; T5: the encoder output) and shared by
// all of its candidates, which then run together in one batched decoder pass.
//
// Thread contract: stateless functions over an immutable Model; safe from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace triad {

struct ScoringItem {
  // Decoder-only: the prompt (>= 1 token; the first candidate token is predicted from its
  // last position). T5: the encoder input (>= 1 token).
  std::vector<int64_t> context;
  // Each >= 1 token. Decoder-only: continuations of `context`. T5: decoder targets, fed after
  // decoder_start_token_id (so a target's last token is predicted, never fed).
  std::vector<std::vector<int64_t>> candidates;
};

struct CandidateScore {
  double logprob_sum = 0;             // sum of token_logprobs
  std::vector<float> token_logprobs;  // log_softmax (float32) of each candidate token
};

struct ScoringOptions {
  // Rows of one batched decoder pass (candidates over all items); larger inputs run in several
  // passes, whole items at a time. >= 1.
  int64_t max_rows = 256;
  // Estimated memory of one pass (float32 logits of every fed position, the candidates' KV
  // caches and, for T5, their copies of the encoder's cross-attention keys/values); a pass
  // takes whole items while it fits (at least one item). >= 1.
  int64_t max_pass_bytes = int64_t{512} << 20;
};

// ScoringOptions::max_pass_bytes' estimate for one item.
int64_t ScoringPassBytes(const Model& model, const ScoringItem& item);

// Scores every candidate of every item; result[i][j] belongs to items[i].candidates[j].
// Each score equals (to float32 rounding) scoring that item alone. INVALID_ARGUMENT naming the
// item and candidate for empty sequences, ids outside the vocabulary or a context + candidate
// longer than the model's context length.
absl::StatusOr<std::vector<std::vector<CandidateScore>>> ScoreCandidates(
    const Model& model, const std::vector<ScoringItem>& items, const ScoringOptions& options = {});

// ScoreCandidates with the keys and values in `pool` (the continuous-batching pool of this
// model), in two ragged passes (Model::ForwardChunks): every item's context (decoder-only: less
// the whole blocks the prefix cache holds, when `prefix_caching`), then every candidate on a
// fork of its context (ForkSequence: the context's full blocks shared, T5's encoder keys too).
// With `prefix_caching` (decoder-only) the full blocks of contexts and of context + candidate
// are registered for later requests. The blocks are taken only for the call. Equal to
// ScoreCandidates to float32 rounding. RESOURCE_EXHAUSTED when the pool runs short; check
// ScoringPoolBlocks against the pool's free blocks first. `cached_positions` (optional)
// receives the context positions taken from the prefix cache.
absl::StatusOr<std::vector<std::vector<CandidateScore>>> ScoreCandidatesInPool(
    const Model& model, KvPool& pool, const std::vector<ScoringItem>& items, bool prefix_caching,
    const ScoringOptions& options = {}, int64_t* cached_positions = nullptr);

// Pool blocks ScoreCandidatesInPool takes for `items` at most.
int64_t ScoringPoolBlocks(const Model& model, const KvPool& pool,
                          const std::vector<ScoringItem>& items);

// Model::HeadLogits for `sequences` (each read at its last token) in `pool`: the sequences of
// one group (`groups[i]`, e.g. one request's multiple-choice rows `<start> context <delim>
// choice <extract>`) run their common leading tokens once and the rest on forks of it
// (ForkSequence). Float32 [N, head_outputs()], rows in order; equal to HeadLogits to float32
// rounding. The blocks are taken only for the call; check HeadPoolBlocks first.
absl::StatusOr<at::Tensor> HeadLogitsInPool(const Model& model, KvPool& pool,
                                            const std::vector<std::vector<int64_t>>& sequences,
                                            const std::vector<int64_t>& groups);
// Pool blocks HeadLogitsInPool takes at most.
int64_t HeadPoolBlocks(const KvPool& pool, const std::vector<std::vector<int64_t>>& sequences);

// Checks one item against the model (what ScoreCandidates checks); `where` prefixes errors.
absl::Status ValidateScoringItem(const Model& model, const ScoringItem& item,
                                 const std::string& where);

}  // namespace triad
