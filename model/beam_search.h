// Hugging Face BeamSearchScorer semantics, shared by the whole-batch beam search
// (generation.cc) and the scheduler's beam groups (server/scheduler.cc): the hypotheses kept
// per input row and one scorer step over a row's 2 * num_beams best candidates.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "model/config.h"

namespace triad {

// HF `early_stopping`: false (stop when no open beam can beat the worst kept hypothesis,
// estimated at the current length), true (stop once num_beams hypotheses are closed), never.
enum class EarlyStopping { kHeuristic, kTrue, kNever };

// HF BeamHypotheses: the best `num_beams` closed hypotheses of one input row.
class BeamHypotheses {
 public:
  BeamHypotheses(int64_t num_beams, double length_penalty, EarlyStopping early_stopping)
      : num_beams_(num_beams), length_penalty_(length_penalty), early_stopping_(early_stopping) {}

  // `ids`: the decoder ids (prompt included, a closing eos excluded); scored
  // sum_logprobs / generated_len^length_penalty.
  void Add(at::Tensor ids, double sum_logprobs, int64_t generated_len);
  bool IsDone(double best_sum_logprobs, int64_t generated_len) const;
  // Best first; among equal scores the later-added first (Python's stable sort + pop()).
  std::vector<std::pair<double, at::Tensor>> Best(int64_t count) const;

 private:
  struct Beam {
    double score;
    at::Tensor ids;
  };
  int64_t num_beams_;
  double length_penalty_;
  EarlyStopping early_stopping_;
  std::vector<Beam> beams_;
  double worst_ = 1e9;
};

// One BeamSearchScorer.process step for batch row `b` of `beams` open beams. `top_scores` /
// `top_tokens` [batch, 2 * beams] (CPU, contiguous) are the best running scores over the
// row's beams x vocabulary, flat index = beam * vocab + token; `sequences` [batch * beams,
// cur_len] the open beams' ids. Fills the next beams' scores, tokens and source rows (indices
// into `sequences`) at b * beams ..; closes hypotheses ending in eos. Returns whether the row
// is done.
bool ProcessBeamRow(const ModelConfig& c, int64_t b, int64_t beams, const at::Tensor& top_scores,
                    const at::Tensor& top_tokens, const at::Tensor& sequences, int64_t cur_len,
                    int64_t prompt_len, BeamHypotheses& hyps, float* next_scores,
                    int64_t* next_tokens, int64_t* next_rows);

}  // namespace triad
