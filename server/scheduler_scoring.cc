// The scoring (classification) side of the Scheduler: its queue, batching window and batches.
// See scheduler.h for the policy.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/scheduler.h"

namespace triad {
namespace {

int64_t ItemTokens(const ScoringItem& item) {
  int64_t n = static_cast<int64_t>(item.context.size());
  for (const auto& c : item.candidates) n += static_cast<int64_t>(c.size());
  return n;
}

}  // namespace

struct Scheduler::ScoringJob {
  ScoringRequest request;
  std::shared_ptr<RequestHandle> handle;
  ScoringResult result;
  SteadyClock::time_point submitted;
  size_t next_head = 0, next_item = 0;  // units handed to batches so far (guarded by mu_)
  bool started = false;                 // loop thread
  bool done = false;                    // loop thread

  size_t num_units() const { return request.head_sequences.size() + request.items.size(); }
  size_t units_taken() const { return next_head + next_item; }
};

// Units of one batch, by job; `complete` are the jobs whose last unit is in it.
struct Scheduler::ScoringBatch {
  std::vector<std::pair<std::shared_ptr<ScoringJob>, size_t>> heads, items;
  std::vector<std::shared_ptr<ScoringJob>> touched, complete;
};

absl::StatusOr<std::shared_ptr<RequestHandle>> Scheduler::SubmitScoring(ScoringRequest request) {
  const ModelConfig& c = model_.config();
  if (request.head_sequences.empty() && request.items.empty()) {
    return absl::InvalidArgumentError("nothing to score: no head sequences and no items");
  }
  if (!request.head_sequences.empty() && model_.head_outputs() == 0) {
    return absl::InvalidArgumentError("head_sequences: this model has no classification head");
  }
  for (size_t i = 0; i < request.head_sequences.size(); ++i) {
    const auto& seq = request.head_sequences[i];
    const std::string where = absl::StrCat("head_sequences[", i, "]");
    if (seq.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty"));
    if (c.max_positions > 0 && static_cast<int64_t>(seq.size()) > c.max_positions) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", seq.size(),
                                                     " tokens exceed the context length ",
                                                     c.max_positions));
    }
    TRIAD_RETURN_IF_ERROR(CheckTokenIds(seq, c.vocab_size, where));
  }
  for (size_t i = 0; i < request.items.size(); ++i) {
    TRIAD_RETURN_IF_ERROR(
        ValidateScoringItem(model_, request.items[i], absl::StrCat("items[", i, "].")));
  }
  auto job = std::make_shared<ScoringJob>();
  job->result.head_logits.resize(request.head_sequences.size());
  job->result.scores.resize(request.items.size());
  job->request = std::move(request);
  job->handle = NewHandle();
  job->submitted = SteadyClock::now();
  std::shared_ptr<RequestHandle> handle = job->handle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    TRIAD_RETURN_IF_ERROR(CheckAcceptingLocked(0, static_cast<int64_t>(job->num_units())));
    scoring_units_waiting_ += static_cast<int64_t>(job->num_units());
    scoring_queue_.push_back(std::move(job));
    stats_.queued = static_cast<int64_t>(queue_.size() + scoring_queue_.size());
  }
  cv_.notify_all();
  return handle;
}

int64_t Scheduler::ScoringWaitingLocked() const {
  int64_t waiting = 0, units = 0;
  for (const auto& job : scoring_queue_) {
    units += static_cast<int64_t>(job->num_units() - job->units_taken());
    if (units > options_.max_scoring_batch) ++waiting;
  }
  return waiting;
}

SteadyClock::time_point Scheduler::ScoringReadyAt() const {
  const ScoringJob& head = *scoring_queue_.front();
  if (stopping_ || head.units_taken() > 0 || scoring_units_waiting_ >= options_.max_scoring_batch) {
    return head.submitted;  // now
  }
  return head.submitted + options_.batch_window;
}

SteadyClock::time_point Scheduler::ScoringWakeAt() const {
  SteadyClock::time_point at = ScoringReadyAt();
  for (const auto& job : scoring_queue_) {
    if (job->handle->cancelled()) return SteadyClock::time_point::min();
    at = std::min(at, job->request.deadline);
  }
  return at;
}

bool Scheduler::ScoringReady(SteadyClock::time_point now) const {
  return !scoring_queue_.empty() && now >= ScoringReadyAt();
}

void Scheduler::CancelScoringLocked() {
  for (auto& job : scoring_queue_) job->handle->cancelled_ = true;
}

std::vector<std::shared_ptr<Scheduler::ScoringJob>> Scheduler::DropScoringLocked(
    SteadyClock::time_point now) {
  std::vector<std::shared_ptr<ScoringJob>> dropped;
  for (auto it = scoring_queue_.begin(); it != scoring_queue_.end();) {
    ScoringJob& job = **it;
    if (job.done || job.handle->cancelled() || now >= job.request.deadline) {
      scoring_units_waiting_ -= static_cast<int64_t>(job.num_units() - job.units_taken());
      dropped.push_back(std::move(*it));
      it = scoring_queue_.erase(it);
    } else {
      ++it;
    }
  }
  stats_.queued = static_cast<int64_t>(queue_.size() + scoring_queue_.size());
  return dropped;
}

Scheduler::ScoringBatch Scheduler::TakeScoringBatch() {
  ScoringBatch batch;
  // While sequences are decoding, a batch costs at most about one prefill chunk.
  const int64_t budget = running_.empty() ? INT64_MAX : options_.prefill_chunk_tokens;
  int64_t units = 0, tokens = 0;
  auto fits = [&](int64_t cost) {
    return units == 0 || (units < options_.max_scoring_batch && tokens + cost <= budget);
  };
  while (!scoring_queue_.empty()) {
    std::shared_ptr<ScoringJob> job = scoring_queue_.front();
    const ScoringRequest& r = job->request;
    const size_t before = job->units_taken();
    while (job->next_head < r.head_sequences.size()) {
      const auto cost = static_cast<int64_t>(r.head_sequences[job->next_head].size());
      if (!fits(cost)) break;
      batch.heads.emplace_back(job, job->next_head++);
      ++units;
      tokens += cost;
    }
    while (job->next_head == r.head_sequences.size() && job->next_item < r.items.size()) {
      const int64_t cost = ItemTokens(r.items[job->next_item]);
      if (!fits(cost)) break;
      batch.items.emplace_back(job, job->next_item++);
      ++units;
      tokens += cost;
    }
    scoring_units_waiting_ -= static_cast<int64_t>(job->units_taken() - before);
    if (job->units_taken() > before) batch.touched.push_back(job);
    if (job->units_taken() < job->num_units()) break;  // the rest runs in the next batch
    batch.complete.push_back(job);
    scoring_queue_.pop_front();
  }
  stats_.queued = static_cast<int64_t>(queue_.size() + scoring_queue_.size());
  return batch;
}

void Scheduler::RunScoring(SteadyClock::time_point now) {
  ScoringBatch batch;
  std::vector<std::shared_ptr<ScoringJob>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped = DropScoringLocked(now);
    if (ScoringReady(now)) batch = TakeScoringBatch();
  }
  for (auto& job : dropped) {
    if (job->done) continue;
    FinishScoring(*job, job->handle->cancelled()
                            ? absl::CancelledError("cancelled")
                            : absl::DeadlineExceededError("the deadline passed before scoring"));
  }
  if (batch.touched.empty()) return;
  for (auto& job : batch.touched) {
    if (!job->started) job->result.queue_seconds = SecondsBetween(job->submitted, now);
    job->started = true;
  }
  absl::Status status;
  if (!batch.heads.empty()) {
    const auto rows = static_cast<int64_t>(batch.heads.size());
    std::vector<std::vector<int64_t>> sequences;
    std::vector<int64_t> groups;  // one per request: its sequences share a context
    for (size_t r = 0; r < batch.heads.size(); ++r) {
      const auto& [job, i] = batch.heads[r];
      sequences.push_back(job->request.head_sequences[i]);
      groups.push_back(r == 0 ? 0 : groups.back() + (batch.heads[r - 1].first == job ? 0 : 1));
    }
    absl::StatusOr<at::Tensor> logits;
    if (pool_ != nullptr && HeadPoolBlocks(*pool_, sequences) <= pool_->free_blocks()) {
      // In the pool: a multiple-choice request's rows run their shared context once.
      logits = HeadLogitsInPool(model_, *pool_, sequences, groups);
    } else {  // one right-padded forward in memory of its own
      size_t width = 0;
      for (const auto& seq : sequences) width = std::max(width, seq.size());
      at::Tensor ids = at::zeros({rows, static_cast<int64_t>(width)}, at::kLong);
      at::Tensor read = at::zeros({rows}, at::kLong);
      for (int64_t r = 0; r < rows; ++r) {
        const auto& seq = sequences[static_cast<size_t>(r)];
        const auto n = static_cast<int64_t>(seq.size());
        ids[r].narrow(0, 0, n).copy_(at::tensor(seq, at::kLong));
        read[r] = n - 1;
      }
      logits = model_.HeadLogits(ids, read);
    }
    if (logits.ok()) {
      const at::Tensor cpu = logits->to(at::kCPU).contiguous();
      for (int64_t r = 0; r < rows; ++r) {
        const float* row = cpu[r].data_ptr<float>();
        auto& [job, i] = batch.heads[static_cast<size_t>(r)];
        job->result.head_logits[i].assign(row, row + cpu.size(1));
      }
    } else {
      status = logits.status();
    }
  }
  if (status.ok() && !batch.items.empty()) {
    std::vector<ScoringItem> items;
    for (const auto& [job, i] : batch.items) items.push_back(job->request.items[i]);
    ScoringOptions options;
    options.max_rows = INT64_MAX;  // the batch is sized in items; passes only cap memory
    // In the KV pool when its free blocks hold the batch (prefix caching applies); otherwise
    // in memory of its own, bounded by max_pass_bytes, so a full pool cannot stall scoring.
    absl::StatusOr<std::vector<std::vector<CandidateScore>>> scores;
    if (pool_ != nullptr && ScoringPoolBlocks(model_, *pool_, items) <= pool_->free_blocks()) {
      int64_t cached = 0;
      scores = ScoreCandidatesInPool(model_, *pool_, items, options_.prefix_caching, options,
                                     &cached);
      if (cached > 0) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          stats_.prefix_cached_positions += cached;
        }
        if (options_.on_prefix_hit) options_.on_prefix_hit(cached);
      }
    } else {
      scores = ScoreCandidates(model_, items, options);
    }
    if (scores.ok()) {
      for (size_t k = 0; k < batch.items.size(); ++k) {
        auto& [job, i] = batch.items[k];
        job->result.scores[i] = std::move((*scores)[k]);
      }
    } else {
      status = scores.status();
    }
  }
  if (options_.on_scoring_batch) {
    options_.on_scoring_batch(static_cast<int64_t>(batch.heads.size() + batch.items.size()));
  }
  // A failed batch fails every request it touched (their remaining units are dropped).
  for (auto& job : status.ok() ? batch.complete : batch.touched) FinishScoring(*job, status);
}

void Scheduler::FinishScoring(ScoringJob& job, absl::Status status) {
  if (job.done) return;
  job.done = true;
  job.result.status = std::move(status);
  const auto now = SteadyClock::now();
  if (!job.started) job.result.queue_seconds = SecondsBetween(job.submitted, now);
  job.result.total_seconds = SecondsBetween(job.submitted, now);
  if (!job.result.status.ok()) {
    job.result.head_logits.clear();
    job.result.scores.clear();
  }
  if (job.request.on_done) job.request.on_done(job.result);
}

}  // namespace triad
