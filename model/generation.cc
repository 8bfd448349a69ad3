#include "model/generation.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"

namespace triad {
namespace {

// Decoding in progress: the model state plus the ids so far, on the CPU.
struct Session {
  std::unique_ptr<DecoderState> state;
  at::Tensor sequences;  // [N, L] int64
  at::Tensor next_pos;   // [N] int64: position of the next token (decoder-only)
  int64_t prompt_length = 0;
};

int64_t PadId(const ModelConfig& c) {
  if (c.pad_token_id >= 0) return c.pad_token_id;
  return c.eos_token_ids.empty() ? 0 : c.eos_token_ids[0];
}

at::Tensor IsEos(const ModelConfig& c, const at::Tensor& tokens) {
  at::Tensor eos = at::zeros_like(tokens, at::kBool);
  for (int64_t id : c.eos_token_ids) eos |= tokens.eq(id);
  return eos;
}

// Runs the prompt (decoder-only) or the encoder plus decoder_start (T5) with every row repeated
// `expand` times; returns the float32 logits of the last position [N, V].
absl::StatusOr<at::Tensor> Start(const Model& model, const GenerationInput& in, int64_t expand,
                                 Session& s) {
  const ModelConfig& c = model.config();
  at::Tensor ids = in.input_ids.to(at::kCPU).repeat_interleave(expand, 0);
  at::Tensor mask = in.attention_mask.defined()
                        ? in.attention_mask.to(at::kCPU).to(at::kLong).repeat_interleave(expand, 0)
                        : at::Tensor();
  const int64_t rows = ids.size(0);
  StepInput step;
  step.last_logits_only = true;
  if (c.is_encoder_decoder()) {
    EncoderInput encoder{ids, mask};
    TRIAD_ASSIGN_OR_RETURN(s.state, model.NewState(rows, &encoder));
    s.sequences = at::full({rows, 1}, c.decoder_start_token_id, at::kLong);
    step.input_ids = s.sequences;
  } else {
    TRIAD_ASSIGN_OR_RETURN(s.state, model.NewState(rows, nullptr));
    s.sequences = ids;
    step.input_ids = ids;
    if (mask.defined()) {
      // HF generate: positions count real tokens; pad positions are set to 1.
      step.attention_mask = mask;
      step.position_ids = (mask.cumsum(1) - 1).masked_fill(mask.eq(0), 1);
      s.next_pos = mask.sum(1);
    } else {
      s.next_pos = at::full({rows}, ids.size(1), at::kLong);
    }
  }
  s.prompt_length = s.sequences.size(1);
  TRIAD_ASSIGN_OR_RETURN(at::Tensor logits, model.Forward(step, *s.state));
  return logits.select(1, 0);
}

// Appends `tokens` [N] to every row and returns the next float32 logits [N, V].
absl::StatusOr<at::Tensor> Advance(const Model& model, Session& s, const at::Tensor& tokens) {
  StepInput step;
  step.input_ids = tokens.view({-1, 1});
  step.last_logits_only = true;
  if (s.next_pos.defined()) {
    step.position_ids = s.next_pos.view({-1, 1});
    s.next_pos = s.next_pos + 1;
  }
  TRIAD_ASSIGN_OR_RETURN(at::Tensor logits, model.Forward(step, *s.state));
  return logits.select(1, 0);
}

absl::StatusOr<GenerationOutput> Greedy(const Model& model, const GenerationInput& in,
                                        const GenerationOptions& opts) {
  const ModelConfig& c = model.config();
  Session s;
  TRIAD_ASSIGN_OR_RETURN(at::Tensor logits, Start(model, in, 1, s));
  const int64_t rows = s.sequences.size(0);
  at::Tensor unfinished = at::ones({rows}, at::kBool);
  std::vector<at::Tensor> chosen_logprobs, step_logits;
  for (int64_t step = 0; step < opts.max_new_tokens; ++step) {
    if (opts.check) TRIAD_RETURN_IF_ERROR(opts.check());
    if (opts.keep_step_logits) step_logits.push_back(logits.to(at::kCPU));
    const at::Tensor logprobs = at::log_softmax(logits, -1);
    at::Tensor next = logits.argmax(-1).to(at::kCPU);
    next = at::where(unfinished, next, at::full_like(next, PadId(c)));
    chosen_logprobs.push_back(logprobs.to(at::kCPU).gather(1, next.view({-1, 1})).view({-1}));
    s.sequences = at::cat({s.sequences, next.view({-1, 1})}, 1);
    unfinished &= IsEos(c, next).logical_not();
    if (!unfinished.any().item<bool>() || step + 1 == opts.max_new_tokens) break;
    TRIAD_ASSIGN_OR_RETURN(logits, Advance(model, s, next));
  }
  GenerationOutput out;
  out.sequences = s.sequences;
  out.token_logprobs = at::stack(chosen_logprobs, 1);
  if (opts.keep_step_logits) out.step_logits = at::stack(step_logits, 0);
  out.prompt_length = s.prompt_length;
  return out;
}

absl::StatusOr<GenerationOutput> Beam(const Model& model, const GenerationInput& in,
                                      const GenerationOptions& opts) {
  const ModelConfig& c = model.config();
  const int64_t beams = opts.num_beams, batch = in.input_ids.size(0);
  Session s;
  TRIAD_ASSIGN_OR_RETURN(at::Tensor logits, Start(model, in, beams, s));
  std::vector<BeamHypotheses> hyps(batch, BeamHypotheses(beams, opts.length_penalty, opts.early_stopping));
  std::vector<bool> done(batch, false);
  at::Tensor beam_scores = at::zeros({batch, beams}, at::kFloat);
  beam_scores.narrow(1, 1, beams - 1).fill_(-1e9);
  beam_scores = beam_scores.view({-1});
  const int64_t max_length = s.prompt_length + opts.max_new_tokens;
  for (int64_t cur_len = s.prompt_length; cur_len < max_length;) {
    if (opts.check) TRIAD_RETURN_IF_ERROR(opts.check());
    at::Tensor scores = at::log_softmax(logits, -1).to(at::kCPU) + beam_scores.view({-1, 1});
    auto [top_scores, top_tokens] = scores.view({batch, -1}).topk(2 * beams, 1, true, true);
    top_scores = top_scores.contiguous();
    top_tokens = top_tokens.contiguous();
    at::Tensor next_scores = at::zeros({batch * beams}, at::kFloat);
    at::Tensor next_tokens = at::full({batch * beams}, PadId(c), at::kLong);
    at::Tensor next_rows = at::zeros({batch * beams}, at::kLong);
    bool all_done = true;
    for (int64_t b = 0; b < batch; ++b) {
      if (!done[b]) {
        done[b] = ProcessBeamRow(c, b, beams, top_scores, top_tokens, s.sequences, cur_len,
                             s.prompt_length, hyps[b], next_scores.data_ptr<float>(),
                             next_tokens.data_ptr<int64_t>(), next_rows.data_ptr<int64_t>());
      }
      all_done = all_done && done[b];
    }
    s.sequences = at::cat({s.sequences.index_select(0, next_rows), next_tokens.view({-1, 1})}, 1);
    beam_scores = next_scores;
    ++cur_len;
    if (all_done || cur_len >= max_length) break;
    s.state->SelectRows(next_rows);
    if (s.next_pos.defined()) s.next_pos = s.next_pos.index_select(0, next_rows);
    TRIAD_ASSIGN_OR_RETURN(logits, Advance(model, s, next_tokens));
  }
  // Finalize: open beams of unfinished rows become hypotheses; pick the best per row.
  std::vector<std::pair<double, at::Tensor>> best;
  for (int64_t b = 0; b < batch; ++b) {
    if (!done[b]) {
      for (int64_t k = 0; k < beams; ++k) {
        const at::Tensor ids = s.sequences[b * beams + k];
        hyps[b].Add(ids, beam_scores[b * beams + k].item<float>(), ids.size(0) - s.prompt_length);
      }
    }
    for (auto& h : hyps[b].Best(opts.num_return_sequences)) best.push_back(std::move(h));
  }
  int64_t longest = 0;
  for (const auto& h : best) longest = std::max(longest, h.second.size(0));
  const int64_t width = std::min(longest + 1, max_length);
  GenerationOutput out;
  out.sequences = at::full({static_cast<int64_t>(best.size()), width}, PadId(c), at::kLong);
  out.sequences_scores = at::empty({static_cast<int64_t>(best.size())}, at::kFloat);
  for (size_t i = 0; i < best.size(); ++i) {
    const at::Tensor& ids = best[i].second;
    out.sequences[i].narrow(0, 0, ids.size(0)).copy_(ids);
    // Hypotheses closed by eos are stored without it; HF writes it back here.
    if (ids.size(0) < width) out.sequences[i][ids.size(0)] = c.eos_token_ids.empty() ? PadId(c) : c.eos_token_ids[0];
    out.sequences_scores[i] = best[i].first;
  }
  out.prompt_length = s.prompt_length;
  return out;
}

}  // namespace

absl::Status GenerationOptions::Validate() const {
  if (max_new_tokens < 1) return absl::InvalidArgumentError("max_new_tokens must be >= 1");
  if (num_beams < 1) return absl::InvalidArgumentError("num_beams must be >= 1");
  if (num_return_sequences < 1 || num_return_sequences > num_beams) {
    return absl::InvalidArgumentError("num_return_sequences must be in [1, num_beams]");
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerationOutput> Generate(const Model& model, const GenerationInput& input,
                                          const GenerationOptions& options) {
  TRIAD_RETURN_IF_ERROR(options.Validate());
  if (!input.input_ids.defined() || input.input_ids.dim() != 2 || input.input_ids.numel() == 0) {
    return absl::InvalidArgumentError("input_ids must be a non-empty [batch, length] tensor");
  }
  const int64_t limit = model.config().max_positions;
  const int64_t prompt = model.config().is_encoder_decoder() ? 1 : input.input_ids.size(1);
  if (limit > 0 && prompt + options.max_new_tokens > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_new_tokens: ", prompt, " prompt tokens + ", options.max_new_tokens,
        " new tokens exceed the context length ", limit));
  }
  if (model.config().is_encoder_decoder() && model.config().eos_token_ids.empty()) {
    return absl::FailedPreconditionError("the model config names no eos_token_id");
  }
  if (options.num_beams == 1) return Greedy(model, input, options);
  return Beam(model, input, options);
}

}  // namespace triad
