#include "server/scheduler.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/scheduler_sequence.h"

namespace triad {
namespace {

bool Contains(const std::vector<int64_t>& ids, int64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

absl::Status SchedulerOptions::Validate() const {
  if (max_batch_size < 1) return absl::InvalidArgumentError("max_batch_size must be >= 1");
  if (max_queue < 0) return absl::InvalidArgumentError("max_queue must be >= 0");
  if (kv_budget_bytes < 0) return absl::InvalidArgumentError("kv_budget_bytes must be >= 0");
  if (kv_block_size < 1) return absl::InvalidArgumentError("kv_block_size must be >= 1");
  if (prefill_chunk_tokens < 1) {
    return absl::InvalidArgumentError("prefill_chunk_tokens must be >= 1");
  }
  if (max_scoring_batch < 1) return absl::InvalidArgumentError("max_scoring_batch must be >= 1");
  if (batch_window.count() < 0) return absl::InvalidArgumentError("batch_window must be >= 0");
  if (admission_window.count() < 0) {
    return absl::InvalidArgumentError("admission_window must be >= 0");
  }
  if (refill_window.count() < 0) return absl::InvalidArgumentError("refill_window must be >= 0");
  return absl::OkStatus();
}

void RequestHandle::Cancel() {
  cancelled_ = true;
  if (wake_) wake_();
}

Scheduler::Scheduler(const Model& model, SchedulerOptions options)
    : model_(model), options_(std::move(options)) {
  const ModelConfig& c = model_.config();
  const int64_t block = std::max<int64_t>(1, options_.kv_block_size);
  // Decode graphs: captured on a cuda device (kAuto), or the static step run eagerly anywhere
  // (kEager, tests).
  const bool graphs = model_.HasStaticDecode() &&
                      (options_.decode_graphs == SchedulerOptions::DecodeGraphs::kEager ||
                       (options_.decode_graphs == SchedulerOptions::DecodeGraphs::kAuto &&
                        model_.placement().device.is_cuda()));
  int64_t blocks;
  if (options_.kv_budget_bytes > 0) {
    const int64_t block_bytes = block * KvBytesPerToken(c, model_.placement().dtype);
    blocks = std::max<int64_t>(1, options_.kv_budget_bytes / block_bytes);
  } else {
    const int64_t context = c.max_positions > 0 ? c.max_positions : 2048;
    const int64_t per_sequence = (context + block - 1) / block * (c.is_encoder_decoder() ? 2 : 1);
    blocks = std::max<int64_t>(1, options_.max_batch_size) * per_sequence + (graphs ? 1 : 0);
  }
  auto pool = model_.NewKvPool(blocks, block);
  if (pool.ok()) {
    pool_ = *std::move(pool);
    if (graphs) {
      auto runner = DecodeGraphRunner::Create(
          model_, *pool_, std::max<int64_t>(1, options_.max_batch_size),
          options_.decode_graphs == SchedulerOptions::DecodeGraphs::kEager
              ? DecodeGraphRunner::Mode::kEager
              : DecodeGraphRunner::Mode::kCapture);
      if (runner.ok()) {
        graphs_ = *std::move(runner);
        graphs_->CaptureAll();  // at start-up rather than in a request's step
        stats_.decode_graphs = graphs_->graphs();
        ReportCaptureFailure();
      } else {  // e.g. a LibTorch without CUDA graphs: decode as without them
        std::cerr << "triad: decode steps run without CUDA graphs: " << runner.status().message()
                  << "\n";
      }
    }
    stats_.kv_capacity_bytes = UsableBlocks() * pool_->block_bytes();
  } else {
    pool_status_ = absl::Status(pool.status().code(),
                                absl::StrCat("KV pool of ", blocks, " blocks: ", pool.status().message()));
  }
  loop_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() { Shutdown(std::chrono::milliseconds(0)); }

std::shared_ptr<RequestHandle> Scheduler::NewHandle() {
  auto handle = std::make_shared<RequestHandle>();
  handle->wake_ = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  };
  return handle;
}

absl::Status Scheduler::CheckAcceptingLocked(int64_t rows, int64_t units) const {
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  // Waiting requests: generations past the rows the running sequences leave free for the next
  // step, scoring jobs past one batch of items.
  int64_t waiting = ScoringWaitingLocked(), queued_rows = running_rows_;
  for (const auto& seq : queue_) {
    queued_rows += Rows(*seq);
    if (queued_rows > options_.max_batch_size && queued_rows > Rows(*seq)) ++waiting;
  }
  const int64_t queued_units = scoring_units_waiting_;
  const bool waits = rows > 0 ? queued_rows > 0 && queued_rows + rows > options_.max_batch_size
                              : queued_units > 0 && queued_units + units > options_.max_scoring_batch;
  if (waits && waiting >= options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the queue of this model is full (", waiting, " requests waiting, max_queue ",
        options_.max_queue, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RequestHandle>> Scheduler::Submit(GenerationRequest request) {
  TRIAD_RETURN_IF_ERROR(request.sampling.Validate());
  const ModelConfig& c = model_.config();
  const int64_t prompt = static_cast<int64_t>(request.prompt_ids.size());
  if (prompt == 0) return absl::InvalidArgumentError("prompt_ids: empty input");
  TRIAD_RETURN_IF_ERROR(CheckTokenIds(request.prompt_ids, c.vocab_size, "prompt_ids"));
  const int64_t decoder_len = (c.is_encoder_decoder() ? 1 : prompt) +
                              request.sampling.max_new_tokens;
  if (c.max_positions > 0 && decoder_len > c.max_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.is_encoder_decoder() ? "max_new_tokens: " : "prompt_ids: ", prompt,
        " prompt tokens + max_new_tokens ", request.sampling.max_new_tokens,
        " exceed the context length ", c.max_positions));
  }
  const int64_t beams = request.num_beams;
  if (beams < 1 || 2 * beams > c.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_beams: ", beams, " must be >= 1 and at most half the vocabulary (", c.vocab_size, ")"));
  }
  TRIAD_RETURN_IF_ERROR(pool_status_);
  // A request that could not complete even alone in the pool is refused now (beam search: every
  // beam at full length, plus a block per beam for forking).
  const int64_t most = beams * pool_->BlocksFor(decoder_len) + (beams > 1 ? beams : 0) +
                       (c.is_encoder_decoder() ? pool_->BlocksFor(prompt) : 0);
  if (most > UsableBlocks()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the request needs up to ", most * pool_->block_bytes(), " bytes of KV cache (", most,
        " blocks); the model's KV pool holds ", UsableBlocks() * pool_->block_bytes()));
  }
  auto seq = std::make_unique<Sequence>();
  seq->handle = NewHandle();
  seq->request = std::move(request);
  seq->submitted = SteadyClock::now();
  std::shared_ptr<RequestHandle> handle = seq->handle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    TRIAD_RETURN_IF_ERROR(CheckAcceptingLocked(Rows(*seq), 0));
    queue_.push_back(std::move(seq));
    stats_.queued = static_cast<int64_t>(queue_.size() + scoring_queue_.size());
  }
  cv_.notify_all();
  return handle;
}

void Scheduler::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      force_cancel_at_ = SteadyClock::now() + grace;
    }
  }
  cv_.notify_all();
  if (loop_.joinable() && loop_.get_id() != std::this_thread::get_id()) loop_.join();
}

int64_t Scheduler::PaddingBlocks() const { return graphs_ != nullptr ? 1 : 0; }

int64_t Scheduler::UsableBlocks() const { return pool_->num_blocks() - PaddingBlocks(); }

void Scheduler::ReportCaptureFailure() {
  // Once, at the first failure: those buckets decode eagerly, with the same results.
  if (capture_failure_reported_ || graphs_->failed_captures() == 0) return;
  capture_failure_reported_ = true;
  std::cerr << "triad: decode CUDA graphs failed to capture; those steps run without one: "
            << graphs_->first_failure() << "\n";
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats stats;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats = stats_;
  }
  if (pool_ != nullptr) {
    // Less the decode graphs' padding block, which no sequence holds.
    stats.kv_used_bytes = (pool_->used_blocks() - PaddingBlocks()) * pool_->block_bytes();
    stats.kv_peak_used_bytes = (pool_->peak_used_blocks() - PaddingBlocks()) * pool_->block_bytes();
  }
  return stats;
}

int64_t Scheduler::AdmissionBlocks(const Sequence& seq) const {
  const bool t5 = model_.config().is_encoder_decoder();
  const int64_t prompt = static_cast<int64_t>(seq.request.prompt_ids.size());
  // Decoder positions to compute: the prompt (T5: the start token), plus what a preempted
  // sequence had generated.
  const int64_t positions = seq.context.empty() ? (t5 ? 1 : prompt)
                                                : static_cast<int64_t>(seq.context.size());
  return pool_->BlocksFor(positions + 1) + (t5 ? pool_->BlocksFor(prompt) : 0);
}

void Scheduler::Loop() {
  for (;;) {
    bool force_cancel = false;
    if (!WaitForWork(&force_cancel)) return;
    if (force_cancel) {
      for (auto& seq : running_) seq->handle->cancelled_ = true;
    }
    const auto now = SteadyClock::now();
    Admit(now);
    RunScoring(now);
    Step();
  }
}

bool Scheduler::WaitForWork(bool* force_cancel) {
  std::unique_lock<std::mutex> lock(mu_);
  double refill_waited = -1;  // >= 0: a refill wait ended, this long
  RefillOutcome outcome = RefillOutcome::kTimeout;
  for (;;) {
    if (stopping_ && queue_.empty() && running_.empty() && scoring_queue_.empty()) return false;
    if (stopping_) break;
    const SteadyClock::time_point now = SteadyClock::now();
    if (!running_.empty()) {
      // Sequences run: the next step starts now, unless it waits out the refill window.
      const bool refilled = static_cast<int64_t>(queue_.size()) >= refill_slots_;
      const bool scoring = !scoring_queue_.empty() && now >= ScoringWakeAt();
      if (refilled || now >= refill_until_ || scoring) {
        if (refill_wait_from_ != SteadyClock::time_point()) {
          refill_waited = SecondsBetween(refill_wait_from_, now);
          outcome = refilled                ? RefillOutcome::kRefilled
                    : now >= refill_until_ ? RefillOutcome::kTimeout
                                           : RefillOutcome::kClassify;
          ++stats_.refill_waits;
          if (refilled) ++stats_.refills;
          stats_.refill_wait_seconds += refill_waited;
          refill_wait_from_ = SteadyClock::time_point();
        }
        refill_slots_ = 0;
        break;
      }
      if (refill_wait_from_ == SteadyClock::time_point()) refill_wait_from_ = now;
      cv_.wait_until(lock, scoring_queue_.empty() ? refill_until_
                                                  : std::min(refill_until_, ScoringWakeAt()));
      continue;
    }
    SteadyClock::time_point wake = SteadyClock::time_point::max();
    if (!queue_.empty()) {
      if (AdmissionBlocks(*queue_.front()) <= pool_->free_blocks()) {
        // Nothing runs: the head may wait out the admission window for company.
        const SteadyClock::time_point ready_at = AdmissionReadyAtLocked();
        if (now >= ready_at) break;
        wake = ready_at;
      } else {
        // Nothing runs, yet the head does not fit (Submit refuses what cannot fit alone, so
        // this should not last): look again shortly, and for cancels and deadlines.
        wake = now + std::chrono::milliseconds(10);
      }
    }
    if (!scoring_queue_.empty()) {
      // Scoring work: sleep out its batching window unless it is ready.
      const SteadyClock::time_point ready_at = ScoringWakeAt();
      if (now >= ready_at) break;
      wake = std::min(wake, ready_at);
    }
    if (wake == SteadyClock::time_point::max()) {
      cv_.wait(lock);
    } else if (cv_.wait_until(lock, wake) == std::cv_status::timeout && !queue_.empty()) {
      break;
    }
  }
  *force_cancel = stopping_ && SteadyClock::now() >= force_cancel_at_;
  if (*force_cancel) {
    for (auto& seq : queue_) seq->handle->cancelled_ = true;
    CancelScoringLocked();
  }
  lock.unlock();
  if (refill_waited >= 0 && options_.on_refill_wait) {
    options_.on_refill_wait(refill_waited, outcome);
  }
  return true;
}

SteadyClock::time_point Scheduler::AdmissionReadyAtLocked() const {
  const Sequence& head = *queue_.front();
  if (options_.admission_window.count() == 0) return head.submitted;
  int64_t rows = 0, prompt_tokens = 0;
  for (const auto& seq : queue_) {
    rows += Rows(*seq);
    prompt_tokens += static_cast<int64_t>(seq->request.prompt_ids.size());
  }
  if (rows >= options_.max_batch_size || prompt_tokens >= options_.prefill_chunk_tokens) {
    return head.submitted;  // a full step is waiting
  }
  return head.submitted + options_.admission_window;
}

void Scheduler::Admit(SteadyClock::time_point now) {
  std::vector<std::unique_ptr<Sequence>> admitted, dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Waiting requests that were cancelled or expired leave without running.
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->handle->cancelled() || now >= (*it)->request.deadline) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    // First come, first served: the head waits until its reservation fits. T5 runs a
    // newcomer's encoder at admission, so one admission encodes at most prefill_chunk_tokens
    // prompt tokens (at least one sequence): a burst of long prompts cannot stall the running
    // sequences' decoding for more than about one chunked-prefill step.
    // Blocks are promised to the admitted sequences' prompts now and taken below; one block of
    // headroom per running row is left free so that the next steps' growth does not
    // preempt a newcomer straight away.
    const bool encodes = model_.config().is_encoder_decoder();
    int64_t encoder_tokens = 0;
    int64_t promised = 0;
    int64_t rows = RunningRows();
    while (!queue_.empty()) {
      const int64_t new_rows = Rows(*queue_.front());
      if (rows + new_rows > options_.max_batch_size && rows > 0) break;
      const int64_t need = AdmissionBlocks(*queue_.front());
      if (promised + need + rows > pool_->free_blocks()) break;
      const int64_t prompt = static_cast<int64_t>(queue_.front()->request.prompt_ids.size());
      if (encodes && !admitted.empty() && encoder_tokens + prompt > options_.prefill_chunk_tokens) {
        break;
      }
      encoder_tokens += prompt;
      promised += need;
      rows += new_rows;
      admitted.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    running_rows_ = rows;  // the queue limit counts the admitted as running from now on
    stats_.queued = static_cast<int64_t>(queue_.size() + scoring_queue_.size());
  }
  for (auto& seq : dropped) {
    Finish(*seq, seq->handle->cancelled() ? FinishReason::kCancelled : FinishReason::kDeadline);
  }
  const ModelConfig& c = model_.config();
  // The newcomers' states in one call (T5: one batched encoder pass); should that fail, each
  // alone, so that one bad sequence fails only itself.
  std::vector<at::Tensor> prompts;
  std::vector<const at::Tensor*> encoder_ids;
  prompts.reserve(admitted.size());
  for (auto& seq : admitted) {
    if (!c.is_encoder_decoder()) {
      encoder_ids.push_back(nullptr);
      continue;
    }
    prompts.push_back(at::tensor(seq->request.prompt_ids, at::kLong));
    encoder_ids.push_back(&prompts.back());
  }
  auto states = model_.NewSequences(*pool_, encoder_ids);
  std::vector<std::unique_ptr<Sequence>> requeue;
  for (size_t i = 0; i < admitted.size(); ++i) {
    auto& seq = admitted[i];
    absl::StatusOr<std::unique_ptr<SequenceState>> state =
        states.ok() ? std::move((*states)[i]) : model_.NewSequence(*pool_, encoder_ids[i]);
    if (seq->context.empty()) {  // first admission (a preempted sequence keeps its own)
      seq->admitted = now;
      std::vector<int64_t> eos = seq->request.sampling.ignore_eos ? std::vector<int64_t>()
                                                                   : c.eos_token_ids;
      seq->sampler = std::make_unique<Sampler>(seq->request.sampling, eos);
      seq->context = c.is_encoder_decoder() ? std::vector<int64_t>{c.decoder_start_token_id}
                                            : seq->request.prompt_ids;
      seq->completion.prompt_tokens = static_cast<int64_t>(seq->request.prompt_ids.size());
    }
    // Everything not in the cache: the prompt (T5: the start token) and what was generated,
    // less a prefix found in the prefix cache (never the last token: its logits are needed).
    int64_t cached = 0;
    if (state.ok() && options_.prefix_caching) {
      const int64_t whole = (static_cast<int64_t>(seq->context.size()) - 1) / pool_->block_size();
      cached = (*state)->AdoptCachedPrefix(seq->context, whole);
    }
    seq->pending.assign(seq->context.begin() + cached, seq->context.end());
    const bool pool_short =
        state.ok() ? !(*state)->Reserve(static_cast<int64_t>(seq->pending.size()) + 1)
                   : state.status().code() == absl::StatusCode::kResourceExhausted &&
                         pool_->free_blocks() < AdmissionBlocks(*seq);
    if (pool_short) {
      // Defensive: fewer blocks are free than admission counted; wait at the head again.
      requeue.push_back(std::move(seq));
      continue;
    }
    if (seq->completion.token_ids.empty()) {  // a preempted sequence's recompute is not the prompt's
      seq->completion.cached_prompt_tokens =
          std::min(cached, static_cast<int64_t>(seq->request.prompt_ids.size()));
    }
    if (cached > 0) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.prefix_cached_positions += cached;
      }
      if (options_.on_prefix_hit) options_.on_prefix_hit(cached);
    }
    running_.push_back(std::move(seq));
    Sequence& added = *running_.back();
    if (!state.ok()) {
      Finish(added, FinishReason::kError, state.status());
      continue;
    }
    added.state = *std::move(state);
  }
  if (!requeue.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = requeue.rbegin(); it != requeue.rend(); ++it) queue_.push_front(std::move(*it));
    stats_.queued = static_cast<int64_t>(queue_.size() + scoring_queue_.size());
  }
  RetireFinished();
}

void Scheduler::Preempt(size_t index) {
  std::unique_ptr<Sequence> seq = std::move(running_[index]);
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(index));
  seq->state.reset();  // its blocks return to the pool now
  seq->beams.reset();
  seq->pending.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_front(std::move(seq));
    stats_.queued = static_cast<int64_t>(queue_.size() + scoring_queue_.size());
    stats_.running = static_cast<int64_t>(running_.size());
    running_rows_ = RunningRows();
    ++stats_.preemptions;
  }
  if (options_.on_preempt) options_.on_preempt();
}

size_t Scheduler::Victim(size_t i) const {
  for (size_t j = running_.size() - 1; j > i; --j) {
    if (running_[j]->beams == nullptr && running_[j]->request.num_beams == 1) return j;
  }
  return running_.size() - 1;
}

int64_t Scheduler::Rows(const Sequence& seq) { return std::max<int64_t>(1, seq.request.num_beams); }

int64_t Scheduler::RunningRows() const {
  int64_t rows = 0;
  for (const auto& seq : running_) rows += Rows(*seq);
  return rows;
}

bool Scheduler::Claim(Sequence& seq, int64_t n, int64_t* held) {
  int64_t forks = 0;
  if (seq.beams != nullptr) {
    for (auto& state : seq.beams->states) {
      if (!state->Reserve(1)) return false;
    }
    forks = seq.request.num_beams;
  } else {
    if (!seq.state->Reserve(n)) return false;
    // The prompt's last chunk: the beams fork from it after this step.
    if (seq.request.num_beams > 1 && n == static_cast<int64_t>(seq.pending.size())) {
      forks = seq.request.num_beams;
    }
  }
  if (forks > 0 && !pool_->Hold(forks)) return false;
  *held += forks;
  return true;
}

bool Scheduler::Step() {
  const auto now = SteadyClock::now();
  for (auto& seq : running_) {
    if (seq->done) continue;
    if (seq->handle->cancelled()) {
      Finish(*seq, FinishReason::kCancelled);
    } else if (now >= seq->request.deadline) {
      Finish(*seq, FinishReason::kDeadline);
    }
  }
  RetireFinished();
  if (running_.empty()) return false;

  std::vector<SequenceChunk> chunks;
  std::vector<Fed> fed;
  int64_t held = 0;
  CollectStep(&chunks, &fed, &held);
  if (chunks.empty()) return false;  // every sequence was preempted: wait for blocks
  // With decode graphs the runner takes the decode rows (a step with prompt chunks splits).
  StepInfo info;
  info.batch_size = static_cast<int64_t>(chunks.size());
  int64_t prompt_chunks = 0;
  for (const Fed& f : fed) {
    // A prompt chunk: several tokens, or the one token of a sequence with none generated yet.
    if (f.tokens > 1 || (f.seq->beams == nullptr && f.seq->completion.token_ids.empty())) {
      ++prompt_chunks;
      info.prompt_tokens += f.tokens;
    }
  }
  info.decode_rows = info.batch_size - prompt_chunks;  // every other chunk is one row
  const auto forward_start = SteadyClock::now();
  auto logits = graphs_ != nullptr ? graphs_->Step(chunks, &info.path)
                                   : model_.ForwardChunks(chunks);
  at::Tensor rows;
  if (logits.ok()) rows = logits->to(at::kCPU);  // waits for an accelerator's forward
  info.forward_seconds = SecondsBetween(forward_start, SteadyClock::now());
  const bool graphed = info.path != StepPath::kChunks;
  pool_->Unhold(held);  // the forks below take these blocks
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.steps;
    if (graphed) {
      ++stats_.graph_steps;
      if (info.path == StepPath::kSplit) ++stats_.split_steps;
      stats_.decode_graphs = graphs_->graphs();
    }
  }
  if (graphed) ReportCaptureFailure();
  if (options_.on_step) options_.on_step(info);
  if (!logits.ok()) {
    for (const Fed& f : fed) Finish(*f.seq, FinishReason::kError, logits.status());
    RetireFinished();
    return true;
  }
  if (options_.prefix_caching) {
    for (const Fed& f : fed) {
      if (f.seq->beams == nullptr) {
        f.seq->state->CachePrefix(f.seq->context);
        continue;
      }
      for (size_t b = 0; b < f.seq->beams->states.size(); ++b) {
        f.seq->beams->states[b]->CachePrefix(f.seq->beams->ids[b]);
      }
    }
  }
  for (const Fed& f : fed) {
    Sequence& seq = *f.seq;
    if (seq.beams != nullptr) {
      BeamStep(seq, rows.narrow(0, f.first_row, static_cast<int64_t>(seq.beams->states.size())));
      continue;
    }
    seq.pending.erase(seq.pending.begin(), seq.pending.begin() + f.tokens);
    if (!seq.pending.empty()) continue;  // still prefilling
    if (seq.request.num_beams > 1) {  // the prompt is in: the first beam step
      StartBeams(seq, rows.narrow(0, f.first_row, 1));
    } else {
      AcceptToken(seq, rows[f.first_row]);
    }
  }
  RetireFinished();
  // Slots freed while others run: the next step may wait for their clients' next requests.
  if (finished_in_step_ > 0 && !running_.empty() && options_.refill_window.count() > 0) {
    refill_slots_ = finished_in_step_;
    refill_until_ = SteadyClock::now() + options_.refill_window;
  }
  finished_in_step_ = 0;
  return true;
}

void Scheduler::CollectStep(std::vector<SequenceChunk>* chunks, std::vector<Fed>* fed,
                            int64_t* held) {
  int64_t budget = options_.prefill_chunk_tokens;
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence* seq = running_[i].get();
    int64_t n = seq->beams != nullptr ? 1 : static_cast<int64_t>(seq->pending.size());
    if (n > 1) {
      if (budget <= 0) continue;
      n = std::min(n, budget);
    }
    bool claimed = Claim(*seq, n, held);
    while (!claimed && running_.size() > i + 1) {
      Preempt(Victim(i));
      claimed = Claim(*seq, n, held);
    }
    if (!claimed) {
      Preempt(i--);
      continue;
    }
    if (n > 1) budget -= n;
    const int64_t first_row = static_cast<int64_t>(chunks->size());
    if (seq->beams != nullptr) {
      for (size_t b = 0; b < seq->beams->states.size(); ++b) {
        chunks->push_back({seq->beams->states[b].get(),
                           at::tensor({seq->beams->ids[b].back()}, at::kLong)});
      }
    } else {
      const std::vector<int64_t> ids(seq->pending.begin(), seq->pending.begin() + n);
      chunks->push_back({seq->state.get(), at::tensor(ids, at::kLong)});
    }
    fed->push_back({seq, n, first_row});
  }
}

void Scheduler::AcceptToken(Sequence& seq, const at::Tensor& logits) {
  const int64_t generated = static_cast<int64_t>(seq.completion.token_ids.size());
  const SampledToken token = seq.sampler->Sample(logits, seq.context, generated);
  if (generated == 0) seq.completion.first_token_seconds = SecondsBetween(seq.submitted, SteadyClock::now());
  seq.completion.token_ids.push_back(token.token_id);
  seq.completion.logprobs.push_back(token.logprob);
  seq.context.push_back(token.token_id);
  const SamplingParams& sp = seq.request.sampling;
  const bool stop_requested = seq.request.on_token && seq.request.on_token({generated, token});
  if (stop_requested || Contains(sp.stop_token_ids, token.token_id)) {
    Finish(seq, FinishReason::kStop);
  } else if (!sp.ignore_eos && Contains(model_.config().eos_token_ids, token.token_id)) {
    Finish(seq, FinishReason::kEos);
  } else if (generated + 1 >= sp.max_new_tokens) {
    Finish(seq, FinishReason::kLength);
  } else {
    seq.pending = {token.token_id};
  }
}

void Scheduler::Finish(Sequence& seq, FinishReason reason, absl::Status status) {
  if (seq.done) return;
  seq.done = true;
  seq.completion.reason = reason;
  seq.completion.status = std::move(status);
  if (reason == FinishReason::kEos || reason == FinishReason::kStop ||
      reason == FinishReason::kLength) {
    ++finished_in_step_;
  }
  const auto now = SteadyClock::now();
  if (seq.admitted != SteadyClock::time_point()) {
    seq.completion.queue_seconds = SecondsBetween(seq.submitted, seq.admitted);
  } else {
    seq.completion.queue_seconds = SecondsBetween(seq.submitted, now);
  }
  seq.completion.total_seconds = SecondsBetween(seq.submitted, now);
  if (seq.request.on_done) seq.request.on_done(seq.completion);
}

void Scheduler::RetireFinished() {
  for (auto it = running_.begin(); it != running_.end();) {
    if ((*it)->done) {
      it = running_.erase(it);  // returns the sequence's KV blocks now
    } else {
      ++it;
    }
  }
  const int64_t rows = RunningRows();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.running = static_cast<int64_t>(running_.size());
  running_rows_ = rows;
}

}  // namespace triad
