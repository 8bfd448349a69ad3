// DecodeGraphRunner: a scheduler's decode-only steps (GPT-1, Llama, T5) replayed from CUDA
// graphs.
//
// On a GPU a decode step is bound by the host: a Llama-110m step dispatches ~950 ATen calls,
// ~5 ms on an H200 whose kernels need well under one (measured in session 9). A graph
// captures the whole step once and replays it as one launch. Graphs need fixed shapes and
// fixed input addresses, so the step runs as Model::StaticDecode over buckets: `rows` rounded
// up to a power of two (at most the scheduler's batch), every row attending to `blocks` pool
// blocks rounded up to a power of two (T5: and to `cross_blocks` blocks of its encoder's keys,
// likewise). A bucket's graph is captured the first time a step needs it, or all of them up
// front (CaptureAll, decoder-only models); its inputs (ids, positions, write slots, lengths,
// block tables) are packed on the host and sent with one copy per step. Padding rows decode
// token 0 at position 0 into a scratch block the runner keeps, so they never touch a
// sequence's blocks.
//
// Mode::kEager runs the same static step without capturing (any device): what the CPU tests
// check against ForwardChunks, and what the runner falls back to for a bucket whose capture
// failed. One runner per pool, used by the one thread that runs the pool's sequences.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace triad {

class DecodeGraphRunner {
 public:
  enum class Mode { kCapture, kEager };

  // A runner for `model`'s sequences in `pool` (made by model.NewKvPool) and steps of at
  // most `max_rows` rows. Takes one block of the pool for padding rows. FailedPrecondition
  // when the model has no static decode step, when kCapture is asked for off CUDA or in a
  // build without CUDA, and ResourceExhausted when the pool has no free block.
  static absl::StatusOr<std::unique_ptr<DecodeGraphRunner>> Create(const Model& model,
                                                                   KvPool& pool,
                                                                   int64_t max_rows, Mode mode);
  ~DecodeGraphRunner();
  DecodeGraphRunner(const DecodeGraphRunner&) = delete;
  DecodeGraphRunner& operator=(const DecodeGraphRunner&) = delete;

  // Whether Forward takes this step: every chunk one token with only its last logits, at most
  // max_rows of them, each sequence in this runner's pool and within
  // Model::StaticDecodePositions (T5: its encoder input within StaticDecodeCrossPositions).
  bool Applies(const std::vector<SequenceChunk>& chunks) const;
  // ForwardChunks for a step Applies accepts: float32 logits [chunks, vocab], each
  // sequence's keys and values appended. Errors as ForwardChunks'.
  absl::StatusOr<at::Tensor> Forward(const std::vector<SequenceChunk>& chunks);

  // How Step ran a step: the model's ForwardChunks alone, Forward alone, or split.
  enum class StepPath { kChunks, kRunner, kSplit };
  // ForwardChunks for any step, with this runner taking what it can: a step Applies accepts
  // runs as Forward (kRunner). One that also holds prompt chunks splits (kSplit) when Applies
  // takes its one-token chunks: those replay their graph first, then the others run eagerly
  // through the model's ForwardChunks (their sequences' caches are disjoint, so the order is
  // free), and the rows come back in the step's order. On a GPU the host queues the prompt's
  // kernels while the device replays the graph, where one eager ForwardChunks would spend a
  // second attention per layer and per-row bookkeeping on the decode rows (triad-bench's
  // arrival16). Anything else, e.g. a chunk asking for every logit, runs as ForwardChunks
  // (kChunks). `path` receives which.
  absl::StatusOr<at::Tensor> Step(const std::vector<SequenceChunk>& chunks, StepPath* path);

  // Captures now (kCapture; nothing in kEager) each row bucket up to max_rows with each block
  // bucket of steps up to `positions` decoder positions (0: StaticDecodePositions) and, for
  // T5, each cross bucket up to `cross_positions` encoder positions (0: none are captured,
  // since T5's limits would make 9 x 9 buckets per row bucket; they are captured as steps
  // first need them). A scheduler calls it at start-up, so that no step waits for a capture
  // while serving (llama-110m: 5 x 8 buckets).
  void CaptureAll(int64_t positions = 0, int64_t cross_positions = 0);

  // Buckets captured so far, and buckets whose capture failed (they run eagerly; the first
  // failure's message is kept).
  int64_t graphs() const { return captured_; }
  int64_t failed_captures() const { return failed_; }
  const std::string& first_failure() const { return first_failure_; }

 private:
  struct Bucket;
  DecodeGraphRunner(const Model& model, KvPool& pool, int64_t max_rows, Mode mode);
  // The bucket for `rows` rows of at most `blocks` blocks, captured on first use.
  Bucket& BucketFor(int64_t rows, int64_t blocks, int64_t cross_blocks);
  void Capture(Bucket& bucket);
  // Forward without its argument checks (Step checks the whole step first).
  absl::StatusOr<at::Tensor> Replay(const std::vector<SequenceChunk>& chunks);

  const Model& model_;
  KvPool& pool_;
  const int64_t max_rows_, max_blocks_, max_cross_blocks_;
  const Mode mode_;
  std::vector<int32_t> scratch_;  // one block, the padding rows' keys and values
  // (rows, blocks, cross blocks)
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<Bucket>> buckets_;
  int64_t captured_ = 0, failed_ = 0;
  std::string first_failure_;
  // The CUDA graph memory pool every bucket shares ({0, 0} until the first capture): buckets
  // replay one at a time, and a step's logits are copied out before the next replay.
  std::pair<unsigned long long, unsigned long long> mempool_{0, 0};
};

}  // namespace triad
