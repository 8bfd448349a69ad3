// Scheduler: one per resident model. A single loop thread owns every sequence and its KV
// state and runs continuous (iteration-level) batching over Model::ForwardChunks: new requests
// join at the next step once the blocks their prompt needs are free in the model's paged KV
// pool (sized by the KV budget), prompts are prefilled in chunks alongside the running
// sequences' decode tokens, and a finished, cancelled or expired sequence leaves at once,
// returning its blocks. Sequences take blocks as they grow; when the pool runs dry the most
// recently admitted sequence (beam searches last) is preempted (its blocks freed, its tokens
// kept) and re-queued at the head, to recompute its cache when blocks free up (vLLM's
// recompute preemption). Its sampler and generated tokens carry over, and the recomputed keys
// and values equal the originals to rounding, so its output is what it would have been. With
// prefix caching, a newcomer adopts the pool's cached blocks of its leading tokens and computes
// only the rest. Scoring (classification) requests share the loop and the weights: they wait
// up to a batching window, then run as one batch of items (GPT-1 head sequences and scored
// contexts with their candidates) between two generation steps, in the KV pool when it has
// room (a context runs once and its continuations on forks of it; scored contexts adopt and
// feed the prefix cache); while generations run a batch is capped at one prefill chunk's worth
// of tokens, so neither kind stalls the other for more than about a step. Beam search runs in the same loop: a beam request prefills its prompt
// once, then its open beams decode as rows of the ragged batch beside everyone else, a beam
// that continues another forking its KV blocks (full blocks shared, the partly filled one
// copied). No gRPC in here: the service adapts RPCs to Submit*().
//
// Thread contract: Submit, Cancel (through the handle), Shutdown and stats() may be called from
// any thread and never block on model work. Callbacks run on the loop thread and must not block.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "model/beam_search.h"
#include "model/decode_graph.h"
#include "model/model.h"
#include "model/sampling.h"
#include "model/scoring.h"

namespace triad {

using SteadyClock = std::chrono::steady_clock;

inline double SecondsBetween(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// How an engine step ran: the model's ForwardChunks alone (kChunks), its decode graphs for
// every row (kRunner), or split between them (kSplit; DecodeGraphRunner::Step).
using StepPath = DecodeGraphRunner::StepPath;

// How a refill-window wait ended: the finished clients' successors came, the window ran out,
// or a Classify batch became ready (it runs at once).
enum class RefillOutcome { kRefilled, kTimeout, kClassify };

// One engine step as SchedulerOptions::on_step reports it.
struct StepInfo {
  int64_t batch_size = 0;     // chunks: one per sequence, one per open beam
  int64_t prompt_tokens = 0;  // tokens of the chunks that (re)compute a prompt
  int64_t decode_rows = 0;    // the other chunks: one token of a sequence already generating
  StepPath path = StepPath::kChunks;
  // The forward and the copy of its logits to the host (which waits for an accelerator), not
  // the sampling after it.
  double forward_seconds = 0;
};

struct SchedulerOptions {
  // Rows decoding together (a beam request counts num_beams; one alone may exceed it); >= 1.
  int64_t max_batch_size = 8;
  // Requests that may wait, i.e. not start at the next step (a generation past the rows the
  // running sequences leave free) or scoring batch (past max_scoring_batch items); a newcomer
  // that would wait beyond them is RESOURCE_EXHAUSTED. 0 = no waiting; >= 0.
  int64_t max_queue = 64;
  // The KV pool's size in bytes (keys and values of every sequence; T5: with its encoder's
  // cross-attention keys/values); 0 = enough for max_batch_size sequences at the model's
  // full context (2048 positions where the model has no limit; on CPU pages are committed
  // only as blocks are first written).
  int64_t kv_budget_bytes = 0;
  int64_t kv_block_size = 16;          // positions per KV block; >= 1
  // Decoder-only models: full blocks of computed tokens stay cached in the pool, and a request
  // whose tokens start with them adopts them instead of recomputing its prompt's prefix.
  bool prefix_caching = true;
  int64_t prefill_chunk_tokens = 256;  // prompt tokens per step over all sequences; >= 1
  // Decode-only steps through a DecodeGraphRunner: kAuto replays them from CUDA graphs on a
  // cuda device (elsewhere nothing changes); kEager runs the runner's static step without
  // capturing, on any device (tests). The runner keeps one KV
  // block for its padding rows (added to an automatic pool size, taken from a set budget).
  enum class DecodeGraphs { kOff, kAuto, kEager };
  DecodeGraphs decode_graphs = DecodeGraphs::kOff;
  // Scoring items (a GPT-1 head sequence, or a scored context with all its candidates) run in
  // one batch at most; >= 1.
  int64_t max_scoring_batch = 32;
  // How long the oldest waiting scoring request waits for others to batch with; 0 = batch
  // only what is already waiting.
  std::chrono::microseconds batch_window{2000};
  // When no sequence runs, how long the oldest waiting generation waits for others to start
  // in the same step, so that a burst of arrivals is prefilled together rather than its first
  // request alone and the rest one step later (on a GPU, where a step of many prompts costs
  // little more than one, the burst then waits for one step instead of two); it ends early once
  // the waiting requests fill a step (max_batch_size rows or prefill_chunk_tokens prompt
  // tokens). While sequences run, newcomers join the next step at once. 0 = no wait; >= 0.
  std::chrono::microseconds admission_window{0};
  // After a step in which generations finished (eos, stop or length) while others still run,
  // how long the next step waits for as many new generations as finished: a closed-loop client
  // (an agent, a chat turn, a benchmark) sends its next request right after its last token,
  // and without the wait that request misses the step that started a moment before it arrived
  // and waits that step out before its own. The wait ends once the queue holds as many
  // requests as finished; when none comes it is this much idle time in that one step.
  // 0 = no wait; >= 0.
  std::chrono::microseconds refill_window{0};
  // Called on the loop thread after each scoring batch with its number of items; unset = not
  // called; must not block.
  std::function<void(int64_t items)> on_scoring_batch;
  // Called on the loop thread after each engine step with what it ran and how long its forward
  // took (StepInfo); must not block (metrics observe it). Unset = not called.
  std::function<void(const StepInfo& step)> on_step;
  // Called on the loop thread after each refill-window wait with how long it waited and how it
  // ended; must not block.
  std::function<void(double seconds, RefillOutcome outcome)> on_refill_wait;
  // Called on the loop thread each time a sequence is preempted; must not block.
  std::function<void()> on_preempt;
  // Called on the loop thread with the prompt positions an admitted sequence took from the
  // prefix cache (> 0 only); must not block.
  std::function<void(int64_t positions)> on_prefix_hit;
  absl::Status Validate() const;
};

enum class FinishReason { kLength, kEos, kStop, kCancelled, kDeadline, kError };

struct TokenEvent {
  int64_t index = 0;  // 0-based position among the generated tokens
  SampledToken token;
};

struct Completion {
  FinishReason reason = FinishReason::kLength;
  absl::Status status;  // non-OK only for kError
  std::vector<int64_t> token_ids;
  std::vector<float> logprobs;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // of the prompt, positions adopted from the prefix cache
  double sequence_score = 0;         // beam search: the chosen hypothesis' normalised score
  double queue_seconds = 0;        // submit -> admitted
  double first_token_seconds = 0;  // submit -> first token (0 if none)
  double total_seconds = 0;        // submit -> finished
};

struct GenerationRequest {
  std::vector<int64_t> prompt_ids;   // decoder-only: the prompt; T5: the encoder input
  SamplingParams sampling;
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  // Beam search (HF BeamSearchScorer over the raw log-probs) when > 1: of `sampling` only
  // max_new_tokens applies, on_token is never called, and the completion holds the best
  // hypothesis (with its closing eos, reason kEos; else kLength) and its sequence_score, no
  // logprobs. <= max_batch_size unless it runs alone; 2 * num_beams <= the vocabulary.
  int64_t num_beams = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
  // Each generated token, in order. Return true to finish now with reason kStop (stop strings
  // are matched by the caller, which owns the detokenizer).
  std::function<bool(const TokenEvent&)> on_token;
  // Exactly once, last.
  std::function<void(const Completion&)> on_done;
};

struct ScoringResult {
  // CANCELLED, DEADLINE_EXCEEDED, or the model's error; the outputs are filled only when OK.
  absl::Status status;
  std::vector<std::vector<float>> head_logits;      // per head sequence: head_outputs() values
  std::vector<std::vector<CandidateScore>> scores;  // per item, per candidate
  double queue_seconds = 0;  // submit -> first batch that ran it
  double total_seconds = 0;  // submit -> done
};

// Classification work of one request: GPT-1 head sequences and scored items. Items may be
// spread over several batches; each item's candidates always run together.
struct ScoringRequest {
  // Each read by Model::HeadLogits at its last token; >= 1 token, within the context.
  std::vector<std::vector<int64_t>> head_sequences;
  std::vector<ScoringItem> items;  // see ScoreCandidates
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  // Exactly once, last.
  std::function<void(const ScoringResult&)> on_done;
};


// Cancels its request (a dropped stream, a client cancel); the slot frees within one step.
class RequestHandle {
 public:
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Scheduler;
  std::atomic<bool> cancelled_{false};
  std::function<void()> wake_;
};

struct SchedulerStats {
  int64_t queued = 0;
  int64_t running = 0;
  int64_t kv_used_bytes = 0;       // pool blocks held by sequences
  int64_t kv_peak_used_bytes = 0;
  int64_t kv_capacity_bytes = 0;   // the blocks sequences can hold (0: no pool could be made)
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t prefix_cached_positions = 0;  // positions admitted sequences adopted, not computed
  int64_t graph_steps = 0;      // steps whose decode rows ran in the DecodeGraphRunner
                                // (decode_graphs), split_steps among them
  int64_t split_steps = 0;      // steps with prompt chunks too: those ran in ForwardChunks
  int64_t decode_graphs = 0;    // its buckets captured as CUDA graphs
  int64_t refill_waits = 0;     // steps that waited for the refill window (refill_window),
  int64_t refills = 0;          // of which the newcomers came before it ended
  double refill_wait_seconds = 0;  // the time those steps waited
};

class Scheduler {
 public:
  // Makes the model's KV pool; should that fail (no device memory), status() says why and
  // every Submit returns it.
  Scheduler(const Model& model, SchedulerOptions options);
  ~Scheduler();  // Shutdown(0) and join
  const absl::Status& status() const { return pool_status_; }
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates and enqueues; returns at once. INVALID_ARGUMENT (naming the field) for bad
  // parameters or a prompt that cannot fit the context, RESOURCE_EXHAUSTED when the queue is
  // full or the request could never fit the KV budget, UNAVAILABLE after Shutdown.
  absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(GenerationRequest request);
  // Validates (INVALID_ARGUMENT naming head_sequences[i] / items[i]) and enqueues; the same
  // queue limit and shutdown rules as Submit.
  absl::StatusOr<std::shared_ptr<RequestHandle>> SubmitScoring(ScoringRequest request);
  // Stops admitting new requests; in-flight ones finish, or are cancelled after `grace`.
  // Blocks until the loop has exited.
  void Shutdown(std::chrono::milliseconds grace);
  SchedulerStats stats() const;

 private:
  struct Sequence;
  struct BeamGroup;
  struct ScoringJob;
  struct ScoringBatch;
  void Loop();
  // Waits until there is work; false when the loop should exit.
  bool WaitForWork(bool* force_cancel);
  // Whether the head of the scoring queue should run now (guarded by mu_).
  bool ScoringReady(SteadyClock::time_point now) const;
  SteadyClock::time_point ScoringReadyAt() const;
  // When the loop must next look at the scoring queue: ready, cancelled or past a deadline.
  SteadyClock::time_point ScoringWakeAt() const;
  // Ends cancelled and expired scoring requests; runs one scoring batch when one is ready.
  void RunScoring(SteadyClock::time_point now);
  std::vector<std::shared_ptr<ScoringJob>> DropScoringLocked(SteadyClock::time_point now);
  ScoringBatch TakeScoringBatch();
  void FinishScoring(ScoringJob& job, absl::Status status);
  void CancelScoringLocked();  // force-cancel at the end of the grace period (mu_ held)
  void Admit(SteadyClock::time_point now);
  // Pool blocks `seq` needs to be admitted: its encoder's (T5) and its decoder positions so far
  // plus the next one.
  int64_t AdmissionBlocks(const Sequence& seq) const;
  // Frees the blocks of running_[index] and puts it back at the head of the queue (a beam
  // search starts over: it has returned nothing yet, and restarting gives the same result).
  void Preempt(size_t index);
  // Which of running_[i + 1 ..] to preempt so that running_[i] can grow: the newest that is not
  // a beam search (a preempted generation keeps its tokens, a beam search starts over), else
  // the newest. Only sequences after i, so nothing already in the step's batch is preempted.
  size_t Victim(size_t i) const;
  // Decode rows `seq` takes in a batch: num_beams for beam search, else 1.
  static int64_t Rows(const Sequence& seq);
  int64_t RunningRows() const;
  // Blocks for the step's new positions of `seq` (`n` tokens, or one per beam) plus, for beam
  // search, one per beam that may fork after the step (held in the pool until then; added to
  // *held). False (holding nothing more) when the pool is short.
  bool Claim(Sequence& seq, int64_t n, int64_t* held);
  // One beam-search step of `seq` on its open beams' logits [beams, V] (float32, CPU);
  // StartBeams makes its beams from the prompt's state and row [1, V] first
  // (scheduler_beam.cc).
  void BeamStep(Sequence& seq, const at::Tensor& logits);
  void StartBeams(Sequence& seq, const at::Tensor& logits);
  // One engine step over the running sequences (false: nothing ran).
  bool Step();
  // A sequence's part of a step: `tokens` fed (a beam group: one per beam), from logits row
  // `first_row` on.
  struct Fed {
    Sequence* seq;
    int64_t tokens;
    int64_t first_row;
  };
  // The step's chunks: one decode token per prefilled sequence (per open beam), prompt chunks
  // within the per-step budget. Oldest first: when the pool cannot hold a sequence's new
  // tokens, newer sequences are preempted (Victim) until it can (or the sequence itself, when
  // it is the newest). Blocks held for forks are added to *held.
  void CollectStep(std::vector<SequenceChunk>* chunks, std::vector<Fed>* fed, int64_t* held);
  // Samples `seq`'s next token from its logits row [V] (float32, CPU), streams it and finishes
  // the sequence on a stop token, eos or its length.
  void AcceptToken(Sequence& seq, const at::Tensor& logits);
  void Finish(Sequence& seq, FinishReason reason, absl::Status status = absl::OkStatus());
  void RetireFinished();
  // A request handle whose Cancel wakes the loop.
  std::shared_ptr<RequestHandle> NewHandle();
  // UNAVAILABLE after Shutdown; RESOURCE_EXHAUSTED when a newcomer of `rows` decode rows (a
  // generation) or `units` scoring items (rows 0) would wait, i.e. not start at the next step
  // or scoring batch, while max_queue requests already wait (mu_ held).
  absl::Status CheckAcceptingLocked(int64_t rows, int64_t units) const;
  // Scoring jobs past the first max_scoring_batch items of the scoring queue (mu_ held).
  int64_t ScoringWaitingLocked() const;

  const Model& model_;
  const SchedulerOptions options_;
  std::unique_ptr<KvPool> pool_;  // null when it could not be made (pool_status_)
  std::unique_ptr<DecodeGraphRunner> graphs_;  // decode_graphs, when it applies to the model
  bool capture_failure_reported_ = false;
  // The decode graphs' padding block (0 or 1), and the pool's other blocks, which sequences
  // can hold.
  int64_t PaddingBlocks() const;
  int64_t UsableBlocks() const;
  // Logs the runner's first failed capture, once.
  void ReportCaptureFailure();
  // When the waiting generations should start, nothing running (options' admission_window):
  // the head's arrival plus the window, or its arrival once they fill a step. mu_ held; the
  // queue is not empty.
  SteadyClock::time_point AdmissionReadyAtLocked() const;
  // The refill window (options' refill_window): generations that finished in the last step
  // while others ran, and until when the next step waits for as many newcomers. Loop thread
  // only.
  int64_t finished_in_step_ = 0;
  int64_t refill_slots_ = 0;
  SteadyClock::time_point refill_until_;
  SteadyClock::time_point refill_wait_from_;  // when the wait began; epoch = not waiting
  absl::Status pool_status_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> queue_;  // guarded by mu_
  std::deque<std::shared_ptr<ScoringJob>> scoring_queue_;  // guarded by mu_; head may be partly run
  int64_t scoring_units_waiting_ = 0;                      // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  SteadyClock::time_point force_cancel_at_ = SteadyClock::time_point::max();  // guarded by mu_
  SchedulerStats stats_;                         // guarded by mu_
  int64_t running_rows_ = 0;  // guarded by mu_: RunningRows() as the loop last left it
  std::vector<std::unique_ptr<Sequence>> running_;  // loop thread only
  std::thread loop_;
};

}  // namespace triad
