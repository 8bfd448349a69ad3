#include "model/scoring.h"

#include <algorithm>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "model/compat.h"
#include "model/status_macros.h"

namespace triad {
namespace {

// Rows [begin, end) of `items` as one batched pass.
struct Pass {
  const std::vector<ScoringItem>& items;
  size_t begin, end;

  int64_t num_items() const { return static_cast<int64_t>(end - begin); }
  int64_t num_rows() const {
    int64_t n = 0;
    for (size_t i = begin; i < end; ++i) n += static_cast<int64_t>(items[i].candidates.size());
    return n;
  }
  // For every candidate row, the index of its item within the pass.
  at::Tensor RowItems() const {
    std::vector<int64_t> rows;
    for (size_t i = begin; i < end; ++i) {
      rows.insert(rows.end(), items[i].candidates.size(), static_cast<int64_t>(i - begin));
    }
    return at::tensor(rows, at::kLong);
  }
  int64_t MaxContext() const {
    size_t n = 0;
    for (size_t i = begin; i < end; ++i) n = std::max(n, items[i].context.size());
    return static_cast<int64_t>(n);
  }
  int64_t MaxCandidate() const {
    size_t n = 0;
    for (size_t i = begin; i < end; ++i) {
      for (const auto& c : items[i].candidates) n = std::max(n, c.size());
    }
    return static_cast<int64_t>(n);
  }
};

// [N, width] right-padded with 0: row n holds `lead` (when >= 0), then candidate n's tokens
// (without its last one when `drop_last`), cut at `width`.
at::Tensor CandidateMatrix(const Pass& pass, int64_t width, int64_t lead, bool drop_last) {
  at::Tensor out = at::zeros({pass.num_rows(), width}, at::kLong);
  auto acc = out.accessor<int64_t, 2>();
  int64_t row = 0;
  for (size_t i = pass.begin; i < pass.end; ++i) {
    for (const auto& c : pass.items[i].candidates) {
      int64_t col = 0;
      if (lead >= 0) acc[row][col++] = lead;
      const size_t stop = drop_last ? c.size() - 1 : c.size();
      for (size_t t = 0; t < stop && col < width; ++t) acc[row][col++] = c[t];
      ++row;
    }
  }
  return out;
}

// Appends one token's log-prob to a candidate's score.
void AddLogprob(CandidateScore& score, float logprob) {
  score.token_logprobs.push_back(logprob);
  score.logprob_sum += logprob;
}

// Reads candidate n's token log-probs from `logprobs` [N, width] (row n, columns 0..len-1).
void Collect(const Pass& pass, const at::Tensor& logprobs,
             std::vector<std::vector<CandidateScore>>& result) {
  const at::Tensor cpu = logprobs.to(at::kCPU).to(at::kFloat).contiguous();
  auto acc = cpu.accessor<float, 2>();
  int64_t row = 0;
  for (size_t i = pass.begin; i < pass.end; ++i) {
    for (const auto& c : pass.items[i].candidates) {
      CandidateScore score;
      for (size_t t = 0; t < c.size(); ++t) AddLogprob(score, acc[row][static_cast<int64_t>(t)]);
      result[i].push_back(std::move(score));
      ++row;
    }
  }
}

// log_softmax(logits)[n, t, targets[n, t]] without materialising the whole log_softmax:
// logits [N, T, V] float32, targets [N, T]; returns [N, T].
at::Tensor TargetLogprobs(const at::Tensor& logits, const at::Tensor& targets) {
  return logits.gather(2, targets.unsqueeze(2)).squeeze(2) - at::logsumexp(logits, -1);
}

// Decoder-only: left-padded prompts in one pass (last-position logits only), then the cache
// rows are repeated per candidate and every candidate but its last token is fed at once.
absl::Status ScoreCausalPass(const Model& model, const Pass& pass,
                             std::vector<std::vector<CandidateScore>>& result) {
  const int64_t num_items = pass.num_items();
  const int64_t width = pass.MaxContext();
  at::Tensor ids = at::zeros({num_items, width}, at::kLong);
  at::Tensor mask = at::zeros({num_items, width}, at::kLong);
  at::Tensor positions = at::zeros({num_items, width}, at::kLong);
  std::vector<int64_t> context_len;
  for (int64_t r = 0; r < num_items; ++r) {
    const auto& ctx = pass.items[pass.begin + static_cast<size_t>(r)].context;
    const int64_t n = static_cast<int64_t>(ctx.size()), pad = width - n;
    ids[r].narrow(0, pad, n).copy_(at::tensor(ctx, at::kLong));
    mask[r].narrow(0, pad, n).fill_(1);
    positions[r].narrow(0, pad, n).copy_(at::arange(n, at::kLong));
    context_len.push_back(n);
  }
  TRIAD_ASSIGN_OR_RETURN(std::unique_ptr<DecoderState> state, model.NewState(num_items, nullptr));
  StepInput prompt{ids, mask, positions, /*last_logits_only=*/true};
  TRIAD_ASSIGN_OR_RETURN(at::Tensor first, model.Forward(prompt, *state));
  const at::Tensor row_items = pass.RowItems();
  const at::Device device = first.device();
  const at::Tensor targets = CandidateMatrix(pass, pass.MaxCandidate(), -1, false).to(device);
  at::Tensor first_lp = at::log_softmax(first.select(1, 0), -1).index_select(0, row_items.to(device));
  at::Tensor picked = first_lp.gather(1, targets.narrow(1, 0, 1));  // [N, 1]
  const int64_t fed = pass.MaxCandidate() - 1;
  if (fed > 0) {
    state->SelectRows(row_items);
    const at::Tensor feed = CandidateMatrix(pass, fed, -1, /*drop_last=*/true);
    const at::Tensor start = at::tensor(context_len, at::kLong).index_select(0, row_items);
    StepInput rest{feed, at::Tensor(), start.unsqueeze(1) + at::arange(fed, at::kLong).unsqueeze(0),
                   false};
    TRIAD_ASSIGN_OR_RETURN(at::Tensor logits, model.Forward(rest, *state));
    const at::Tensor lp = TargetLogprobs(logits, targets.narrow(1, 1, fed));
    picked = at::cat({picked, lp}, 1);
  }
  Collect(pass, picked, result);
  return absl::OkStatus();
}

// T5: the encoder runs once over the right-padded inputs; its cross-attention keys/values are
// repeated per candidate and the targets are teacher-forced after decoder_start in one pass.
absl::Status ScoreSeq2SeqPass(const Model& model, const Pass& pass,
                              std::vector<std::vector<CandidateScore>>& result) {
  const int64_t num_items = pass.num_items();
  at::Tensor ids = at::zeros({num_items, pass.MaxContext()}, at::kLong);
  at::Tensor mask = at::zeros_like(ids);
  for (int64_t r = 0; r < num_items; ++r) {
    const auto& ctx = pass.items[pass.begin + static_cast<size_t>(r)].context;
    const int64_t n = static_cast<int64_t>(ctx.size());
    ids[r].narrow(0, 0, n).copy_(at::tensor(ctx, at::kLong));
    mask[r].narrow(0, 0, n).fill_(1);
  }
  EncoderInput encoder{ids, mask};
  TRIAD_ASSIGN_OR_RETURN(std::unique_ptr<DecoderState> state, model.NewState(num_items, &encoder));
  state->SelectRows(pass.RowItems());
  const int64_t width = pass.MaxCandidate();
  const at::Tensor feed = CandidateMatrix(pass, width, model.config().decoder_start_token_id,
                                          /*drop_last=*/true);
  TRIAD_ASSIGN_OR_RETURN(at::Tensor logits, model.Forward(StepInput{feed, {}, {}, false}, *state));
  const at::Tensor targets = CandidateMatrix(pass, width, -1, false).to(logits.device());
  Collect(pass, TargetLogprobs(logits, targets), result);
  return absl::OkStatus();
}

// Target log-probs of rows of logits: logits [R, V] float32, targets [R] -> [R].
at::Tensor RowLogprobs(const at::Tensor& logits, const at::Tensor& targets) {
  return TargetLogprobs(logits.unsqueeze(0), targets.to(logits.device()).unsqueeze(0)).squeeze(0);
}

// One candidate's chunk on a fork of its context, and where its log-probs go.
struct CandidateRun {
  std::unique_ptr<SequenceState> state;
  std::vector<int64_t> fed, targets;  // fed[t] predicts targets[t]
  CandidateScore* score;
  std::vector<int64_t> cache_tokens;  // prefix caching: the sequence's tokens (else empty)
};

// Runs `runs` (each with all_logits) in passes whose logits stay under `max_bytes`, appending
// every target's log-prob to its score.
absl::Status RunCandidates(const Model& model, std::vector<CandidateRun>& runs, int64_t max_bytes) {
  const int64_t row_bytes = model.config().vocab_size * 4;
  size_t begin = 0;
  while (begin < runs.size()) {
    std::vector<SequenceChunk> chunks;
    std::vector<int64_t> targets;
    int64_t rows = 0;
    size_t end = begin;
    for (; end < runs.size(); ++end) {
      const auto n = static_cast<int64_t>(runs[end].fed.size());
      if (end > begin && (rows + n) * row_bytes > max_bytes) break;
      chunks.push_back({runs[end].state.get(), at::tensor(runs[end].fed, at::kLong), true});
      targets.insert(targets.end(), runs[end].targets.begin(), runs[end].targets.end());
      rows += n;
    }
    TRIAD_ASSIGN_OR_RETURN(at::Tensor logits, model.ForwardChunks(chunks));
    const at::Tensor lp =
        RowLogprobs(logits, at::tensor(targets, at::kLong)).to(at::kCPU).contiguous();
    const float* value = lp.data_ptr<float>();
    for (size_t r = begin; r < end; ++r) {
      if (!runs[r].cache_tokens.empty()) runs[r].state->CachePrefix(runs[r].cache_tokens);
      runs[r].state.reset();  // its blocks go back now (cached ones stay in the prefix cache)
      for (size_t t = 0; t < runs[r].targets.size(); ++t) AddLogprob(*runs[r].score, *value++);
    }
    begin = end;
  }
  return absl::OkStatus();
}

}  // namespace

int64_t ScoringPoolBlocks(const Model& model, const KvPool& pool,
                          const std::vector<ScoringItem>& items) {
  const bool t5 = model.config().is_encoder_decoder();
  const int64_t bs = pool.block_size();
  int64_t blocks = 0;
  for (const ScoringItem& item : items) {
    const auto context = static_cast<int64_t>(item.context.size());
    blocks += pool.BlocksFor(context);  // decoder-only: the context; T5: the encoder's keys
    for (const auto& candidate : item.candidates) {
      const auto n = static_cast<int64_t>(candidate.size());
      // T5: start + n - 1 decoder positions; decoder-only: a copy of the partial block and
      // the n - 1 fed positions after the context.
      blocks += t5 ? pool.BlocksFor(n) : pool.BlocksFor(context + n - 1) - context / bs;
    }
  }
  return blocks;
}

namespace {

absl::StatusOr<std::vector<std::vector<CandidateScore>>> ScoreInPool(
    const Model& model, KvPool& pool, const std::vector<ScoringItem>& items, bool prefix_caching,
    const ScoringOptions& options, int64_t* cached_positions) {
  const ModelConfig& c = model.config();
  const bool t5 = c.is_encoder_decoder();
  std::vector<std::vector<CandidateScore>> result(items.size());
  for (size_t i = 0; i < items.size(); ++i) result[i].resize(items[i].candidates.size());
  // The contexts: T5 encodes them (one padded encoder batch); decoder-only models prefill them
  // in one ragged pass whose last-position logits score every candidate's first token.
  std::vector<at::Tensor> encoder_ids;
  std::vector<const at::Tensor*> encoders;
  encoder_ids.reserve(items.size());
  for (const ScoringItem& item : items) {
    encoder_ids.push_back(at::tensor(item.context, at::kLong));
    encoders.push_back(t5 ? &encoder_ids.back() : nullptr);
  }
  TRIAD_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<SequenceState>> contexts,
                         model.NewSequences(pool, encoders));
  std::vector<CandidateRun> runs;
  if (!t5) {
    std::vector<SequenceChunk> chunks;
    std::vector<int64_t> firsts;
    for (size_t i = 0; i < items.size(); ++i) {
      const std::vector<int64_t>& context = items[i].context;
      int64_t cached = 0;
      if (prefix_caching) {
        const auto whole = (static_cast<int64_t>(context.size()) - 1) / pool.block_size();
        cached = contexts[i]->AdoptCachedPrefix(context, whole);
        if (cached_positions != nullptr) *cached_positions += cached;
      }
      chunks.push_back({contexts[i].get(),
                        at::tensor(std::vector<int64_t>(context.begin() + cached, context.end()),
                                   at::kLong)});
    }
    TRIAD_ASSIGN_OR_RETURN(at::Tensor last, model.ForwardChunks(chunks));
    std::vector<int64_t> rows;
    for (size_t i = 0; i < items.size(); ++i) {
      if (prefix_caching) contexts[i]->CachePrefix(items[i].context);
      for (const auto& candidate : items[i].candidates) {
        rows.push_back(static_cast<int64_t>(i));
        firsts.push_back(candidate[0]);
      }
    }
    const at::Tensor index = at::tensor(rows, at::kLong).to(last.device());
    const at::Tensor first =
        RowLogprobs(last.index_select(0, index), at::tensor(firsts, at::kLong)).to(at::kCPU);
    const float* value = first.data_ptr<float>();
    for (size_t i = 0; i < items.size(); ++i) {
      for (CandidateScore& score : result[i]) AddLogprob(score, *value++);
    }
  }
  // Every candidate on a fork of its context: decoder-only feeds all but its last token (the
  // first was scored above); T5 feeds decoder_start and all but its last token.
  for (size_t i = 0; i < items.size(); ++i) {
    for (size_t j = 0; j < items[i].candidates.size(); ++j) {
      const std::vector<int64_t>& candidate = items[i].candidates[j];
      CandidateRun run;
      run.score = &result[i][j];
      if (t5) {
        run.fed.push_back(c.decoder_start_token_id);
        run.targets = candidate;
      } else if (candidate.size() > 1) {
        run.targets.assign(candidate.begin() + 1, candidate.end());
      } else {
        continue;
      }
      run.fed.insert(run.fed.end(), candidate.begin(), candidate.end() - 1);
      if (prefix_caching && !t5) {  // e.g. echo's prompt, which its generation then adopts
        run.cache_tokens = items[i].context;
        run.cache_tokens.insert(run.cache_tokens.end(), run.fed.begin(), run.fed.end());
      }
      TRIAD_ASSIGN_OR_RETURN(run.state, model.ForkSequence(*contexts[i]));
      runs.push_back(std::move(run));
    }
  }
  TRIAD_RETURN_IF_ERROR(RunCandidates(model, runs, options.max_pass_bytes));
  return result;
}

}  // namespace

absl::StatusOr<std::vector<std::vector<CandidateScore>>> ScoreCandidatesInPool(
    const Model& model, KvPool& pool, const std::vector<ScoringItem>& items, bool prefix_caching,
    const ScoringOptions& options, int64_t* cached_positions) {
  if (options.max_pass_bytes < 1) return absl::InvalidArgumentError("max_pass_bytes must be >= 1");
  for (size_t i = 0; i < items.size(); ++i) {
    TRIAD_RETURN_IF_ERROR(ValidateScoringItem(model, items[i], absl::StrCat("items[", i, "].")));
  }
  if (cached_positions != nullptr) *cached_positions = 0;
  if (items.empty()) return std::vector<std::vector<CandidateScore>>();
  try {
    return ScoreInPool(model, pool, items, prefix_caching, options, cached_positions);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("scoring: ", compat::ErrorMessage(e)));
  }
}

int64_t HeadPoolBlocks(const KvPool& pool, const std::vector<std::vector<int64_t>>& sequences) {
  int64_t blocks = 0;  // a group's shared part, then each sequence's rest and partial copy
  for (const auto& sequence : sequences) {
    blocks += 2 * pool.BlocksFor(static_cast<int64_t>(sequence.size())) + 1;
  }
  return blocks;
}

absl::StatusOr<at::Tensor> HeadLogitsInPool(const Model& model, KvPool& pool,
                                            const std::vector<std::vector<int64_t>>& sequences,
                                            const std::vector<int64_t>& groups) {
  if (groups.size() != sequences.size()) {
    return absl::InvalidArgumentError("groups: one per sequence");
  }
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("sequences[", i, "]: empty"));
    }
  }
  if (sequences.empty()) return at::zeros({0, model.head_outputs()}, at::kFloat);
  // Per group: the leading tokens all its sequences share (at least two of them), leaving each
  // at least its last token to run on its fork.
  // A group's leader is its first sequence.
  std::vector<int64_t> shared(sequences.size(), 0), members(sequences.size(), 0);
  std::vector<size_t> leader(sequences.size());
  std::unordered_map<int64_t, size_t> first_of;
  for (size_t i = 0; i < sequences.size(); ++i) {
    leader[i] = first_of.emplace(groups[i], i).first->second;
    ++members[leader[i]];
  }
  for (size_t i = 0; i < sequences.size(); ++i) {
    const size_t l = leader[i];
    if (l == i) {
      shared[i] = static_cast<int64_t>(sequences[i].size()) - 1;
      continue;
    }
    int64_t n = 0;
    const auto& a = sequences[l];
    const auto& b = sequences[i];
    while (n < shared[l] && n + 1 < static_cast<int64_t>(b.size()) && a[n] == b[n]) ++n;
    shared[l] = n;
  }
  std::vector<std::unique_ptr<SequenceState>> contexts(sequences.size());
  std::vector<SequenceChunk> context_chunks;
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (leader[i] != i || members[i] < 2 || shared[i] < 1) continue;
    TRIAD_ASSIGN_OR_RETURN(contexts[i], model.NewSequence(pool, nullptr));
    context_chunks.push_back(
        {contexts[i].get(),
         at::tensor(std::vector<int64_t>(sequences[i].begin(), sequences[i].begin() + shared[i]),
                    at::kLong)});
  }
  if (!context_chunks.empty()) {
    TRIAD_RETURN_IF_ERROR(model.HeadChunks(context_chunks).status());
  }
  std::vector<std::unique_ptr<SequenceState>> states;
  std::vector<SequenceChunk> chunks;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const SequenceState* context = contexts[leader[i]].get();
    const int64_t skip = context != nullptr ? shared[leader[i]] : 0;
    if (context != nullptr) {
      TRIAD_ASSIGN_OR_RETURN(auto fork, model.ForkSequence(*context));
      states.push_back(std::move(fork));
    } else {
      TRIAD_ASSIGN_OR_RETURN(auto fresh, model.NewSequence(pool, nullptr));
      states.push_back(std::move(fresh));
    }
    chunks.push_back(
        {states.back().get(),
         at::tensor(std::vector<int64_t>(sequences[i].begin() + skip, sequences[i].end()),
                    at::kLong)});
  }
  return model.HeadChunks(chunks);
}

absl::Status ValidateScoringItem(const Model& model, const ScoringItem& item,
                                 const std::string& where) {
  const ModelConfig& c = model.config();
  auto check_ids = [&](const std::vector<int64_t>& ids, const std::string& what) -> absl::Status {
    if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(where, what, ": empty"));
    return CheckTokenIds(ids, c.vocab_size, absl::StrCat(where, what));
  };
  TRIAD_RETURN_IF_ERROR(check_ids(item.context, "context"));
  if (item.candidates.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "candidates: none"));
  }
  for (size_t j = 0; j < item.candidates.size(); ++j) {
    const std::string name = absl::StrCat("candidates[", j, "]");
    TRIAD_RETURN_IF_ERROR(check_ids(item.candidates[j], name));
    // Decoder-only models feed the context and all but the candidate's last token.
    const size_t fed = c.is_encoder_decoder() ? item.candidates[j].size()
                                              : item.context.size() + item.candidates[j].size() - 1;
    if (c.max_positions > 0 && static_cast<int64_t>(fed) > c.max_positions) {
      return absl::InvalidArgumentError(absl::StrCat(where, name, ": context + candidate (", fed,
                                                     " positions) exceed the context length ",
                                                     c.max_positions));
    }
  }
  return absl::OkStatus();
}

int64_t ScoringPassBytes(const Model& model, const ScoringItem& item) {
  const ModelConfig& c = model.config();
  const at::ScalarType dtype = model.placement().dtype;
  size_t longest = 0;
  for (const auto& cand : item.candidates) longest = std::max(longest, cand.size());
  const auto rows = static_cast<int64_t>(item.candidates.size());
  const auto context = static_cast<int64_t>(item.context.size());
  const auto width = static_cast<int64_t>(longest);
  // Logits [rows, width, V] float32, plus the row's cache (decoder-only: context + width
  // positions; T5: width decoder positions and the copied encoder keys/values).
  int64_t per_row = width * c.vocab_size * 4;
  if (c.is_encoder_decoder()) {
    per_row += width * KvBytesPerToken(c, dtype) + context * CrossKvBytesPerToken(c, dtype);
  } else {
    per_row += (context + width) * KvBytesPerToken(c, dtype);
  }
  return rows * per_row;
}

absl::StatusOr<std::vector<std::vector<CandidateScore>>> ScoreCandidates(
    const Model& model, const std::vector<ScoringItem>& items, const ScoringOptions& options) {
  if (options.max_rows < 1) return absl::InvalidArgumentError("max_rows must be >= 1");
  if (options.max_pass_bytes < 1) return absl::InvalidArgumentError("max_pass_bytes must be >= 1");
  for (size_t i = 0; i < items.size(); ++i) {
    TRIAD_RETURN_IF_ERROR(ValidateScoringItem(model, items[i], absl::StrCat("items[", i, "].")));
  }
  std::vector<std::vector<CandidateScore>> result(items.size());
  size_t begin = 0;
  while (begin < items.size()) {
    size_t end = begin;
    int64_t rows = 0, bytes = 0;
    while (end < items.size()) {
      const auto n = static_cast<int64_t>(items[end].candidates.size());
      const int64_t b = ScoringPassBytes(model, items[end]);
      if (end > begin && (rows + n > options.max_rows || bytes + b > options.max_pass_bytes)) break;
      rows += n;
      bytes += b;
      ++end;
    }
    const Pass pass{items, begin, end};
    try {
      TRIAD_RETURN_IF_ERROR(model.config().is_encoder_decoder()
                                ? ScoreSeq2SeqPass(model, pass, result)
                                : ScoreCausalPass(model, pass, result));
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("scoring: ", compat::ErrorMessage(e)));
    }
    begin = end;
  }
  return result;
}

}  // namespace triad
