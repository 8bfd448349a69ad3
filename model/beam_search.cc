#include "model/beam_search.h"

#include <algorithm>
#include <cmath>

namespace triad {

void BeamHypotheses::Add(at::Tensor ids, double sum_logprobs, int64_t generated_len) {
  const double score = sum_logprobs / std::pow(static_cast<double>(generated_len), length_penalty_);
  if (static_cast<int64_t>(beams_.size()) >= num_beams_ && score <= worst_) return;
  beams_.push_back({score, std::move(ids)});
  if (static_cast<int64_t>(beams_.size()) > num_beams_) {
    // Drop the worst (lowest score, earliest on ties, as Python's sort of (score, index)).
    size_t worst = 0;
    for (size_t i = 1; i < beams_.size(); ++i) {
      if (beams_[i].score < beams_[worst].score) worst = i;
    }
    beams_.erase(beams_.begin() + static_cast<std::ptrdiff_t>(worst));
    worst_ = beams_[0].score;
    for (const Beam& b : beams_) worst_ = std::min(worst_, b.score);
  } else {
    worst_ = std::min(worst_, score);
  }
}

bool BeamHypotheses::IsDone(double best_sum_logprobs, int64_t generated_len) const {
  if (static_cast<int64_t>(beams_.size()) < num_beams_) return false;
  if (early_stopping_ == EarlyStopping::kTrue) return true;
  if (early_stopping_ == EarlyStopping::kNever) return false;
  const double best =
      best_sum_logprobs / std::pow(static_cast<double>(generated_len), length_penalty_);
  return worst_ >= best;
}

std::vector<std::pair<double, at::Tensor>> BeamHypotheses::Best(int64_t count) const {
  std::vector<Beam> sorted = beams_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Beam& a, const Beam& b) { return a.score < b.score; });
  std::vector<std::pair<double, at::Tensor>> out;
  for (int64_t i = 0; i < count && !sorted.empty(); ++i) {
    out.emplace_back(sorted.back().score, sorted.back().ids);
    sorted.pop_back();
  }
  return out;
}

bool ProcessBeamRow(const ModelConfig& c, int64_t b, int64_t beams, const at::Tensor& top_scores,
                    const at::Tensor& top_tokens, const at::Tensor& sequences, int64_t cur_len,
                    int64_t prompt_len, BeamHypotheses& hyps, float* next_scores,
                    int64_t* next_tokens, int64_t* next_rows) {
  const int64_t vocab_beams = top_scores.size(1);
  const float* scores = top_scores.data_ptr<float>() + b * vocab_beams;
  const int64_t* flat = top_tokens.data_ptr<int64_t>() + b * vocab_beams;
  const int64_t vocab = c.vocab_size;
  int64_t filled = 0;
  for (int64_t rank = 0; rank < vocab_beams && filled < beams; ++rank) {
    const int64_t token = flat[rank] % vocab, row = b * beams + flat[rank] / vocab;
    const bool eos = std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), token) !=
                     c.eos_token_ids.end();
    if (eos) {
      if (rank < beams) hyps.Add(sequences[row].clone(), scores[rank], cur_len + 1 - prompt_len);
      continue;
    }
    next_scores[b * beams + filled] = scores[rank];
    next_tokens[b * beams + filled] = token;
    next_rows[b * beams + filled] = row;
    ++filled;
  }
  return hyps.IsDone(scores[0], cur_len + 1 - prompt_len);
}

}  // namespace triad
