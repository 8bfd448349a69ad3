// Beam search in the Scheduler's loop: each request's open beams are rows of the ragged batch,
// forking one another's KV blocks as they continue (see scheduler.h for the policy).
#include <algorithm>

#include "server/scheduler_sequence.h"

namespace triad {

void Scheduler::StartBeams(Sequence& seq, const at::Tensor& logits) {
  seq.beams = std::make_unique<BeamGroup>(BeamGroup{
      {}, {seq.context}, {0.0f},
      BeamHypotheses(seq.request.num_beams, seq.request.length_penalty,
                     seq.request.early_stopping)});
  seq.beams->states.push_back(std::move(seq.state));
  if (seq.completion.first_token_seconds == 0) {  // its first candidates: like a first token
    seq.completion.first_token_seconds = SecondsBetween(seq.submitted, SteadyClock::now());
  }
  BeamStep(seq, logits);
}

void Scheduler::BeamStep(Sequence& seq, const at::Tensor& logits) {
  const ModelConfig& c = model_.config();
  BeamGroup& g = *seq.beams;
  const int64_t beams = seq.request.num_beams, open = static_cast<int64_t>(g.ids.size());
  const int64_t prompt_len = static_cast<int64_t>(seq.context.size());
  const int64_t cur_len = static_cast<int64_t>(g.ids[0].size());
  // As generation.cc's Beam, on this request's open beams alone (the first step: the prompt's
  // row, which HF repeats num_beams times with every copy but the first scored -1e9).
  const at::Tensor scores = at::log_softmax(logits, -1) + at::tensor(g.scores).view({-1, 1});
  auto [top_scores, top_tokens] = scores.view({1, -1}).topk(2 * beams, 1, true, true);
  at::Tensor sequences = at::empty({open, cur_len}, at::kLong);
  for (int64_t b = 0; b < open; ++b) {
    std::copy(g.ids[b].begin(), g.ids[b].end(), sequences[b].data_ptr<int64_t>());
  }
  std::vector<float> next_scores(beams, 0.0f);
  std::vector<int64_t> next_tokens(beams, 0), next_rows(beams, 0);
  const bool done = ProcessBeamRow(c, 0, beams, top_scores.contiguous(), top_tokens.contiguous(),
                                   sequences, cur_len, prompt_len, g.hypotheses,
                                   next_scores.data(), next_tokens.data(), next_rows.data());
  std::vector<std::vector<int64_t>> ids(beams);
  for (int64_t j = 0; j < beams; ++j) {
    ids[j] = g.ids[next_rows[j]];
    ids[j].push_back(next_tokens[j]);
  }
  if (!done && cur_len + 1 < prompt_len + seq.request.sampling.max_new_tokens) {
    // Beam j continues open beam next_rows[j]: the first to do so takes its state, the others
    // fork it (sharing its full blocks). Beams nobody continues free their blocks.
    std::vector<std::unique_ptr<SequenceState>> states(beams);
    std::vector<int64_t> taker(open, -1);
    for (int64_t j = 0; j < beams; ++j) {
      const int64_t from = next_rows[j];
      if (taker[from] < 0) {
        taker[from] = j;
        continue;
      }
      auto fork = model_.ForkSequence(*g.states[from]);
      if (!fork.ok()) return Finish(seq, FinishReason::kError, fork.status());
      states[j] = *std::move(fork);
    }
    for (int64_t b = 0; b < open; ++b) {
      if (taker[b] >= 0) states[taker[b]] = std::move(g.states[b]);
    }
    g.states = std::move(states);
    g.ids = std::move(ids);
    g.scores = std::move(next_scores);
    return;
  }
  // Finished: unless the scorer is done, the open beams compete as hypotheses too.
  if (!done) {
    for (int64_t j = 0; j < beams; ++j) {
      const int64_t len = static_cast<int64_t>(ids[j].size());
      g.hypotheses.Add(at::tensor(ids[j], at::kLong), next_scores[j], len - prompt_len);
    }
  }
  const auto best = g.hypotheses.Best(1);
  const at::Tensor& chosen = best[0].second;
  const int64_t* first = chosen.data_ptr<int64_t>();
  seq.completion.token_ids.assign(first + prompt_len, first + chosen.size(0));
  seq.completion.sequence_score = static_cast<float>(best[0].first);
  // A hypothesis closed by eos is stored without it (and is shorter than max_new_tokens).
  const bool closed = static_cast<int64_t>(seq.completion.token_ids.size()) <
                      seq.request.sampling.max_new_tokens;
  if (closed && !c.eos_token_ids.empty()) seq.completion.token_ids.push_back(c.eos_token_ids[0]);
  Finish(seq, closed ? FinishReason::kEos : FinishReason::kLength);
}

}  // namespace triad
