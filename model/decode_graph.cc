#include "model/decode_graph.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/causal_state.h"
#include "model/compat.h"
#include "model/guard.h"

#if TRIAD_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace triad {
namespace {

// Contexts without a limit are bucketed up to this many positions (longer steps run eagerly).
constexpr int64_t kUnlimitedContext = 65536;

// The smallest power of two >= n, at most `cap` (itself a bucket, power of two or not).
int64_t Bucketed(int64_t n, int64_t cap) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return std::min(b, cap);
}

const CausalSequence* AsCausal(const SequenceChunk& chunk) {
  return dynamic_cast<const CausalSequence*>(chunk.state);
}

// Every row a padding row: token 0 at position 0, written to the scratch block (row i to its
// slot i % block_size, so that no two rows of a step write one slot) and attending to the
// block's first key.
void FillPadding(std::vector<int64_t>& host, int64_t rows, int64_t scratch_block,
                 int64_t block_size) {
  std::fill(host.begin(), host.begin() + 2 * rows, 0);
  for (int64_t i = 0; i < rows; ++i) {
    host[static_cast<size_t>(2 * rows + i)] = scratch_block * block_size + i % block_size;
  }
  std::fill(host.begin() + 3 * rows, host.begin() + 4 * rows, 1);
  std::fill(host.begin() + 4 * rows, host.end(), scratch_block);
}

}  // namespace

struct DecodeGraphRunner::Bucket {
  StaticDecodeInputs in;      // views of `packed`
  at::Tensor packed;          // [rows * (4 + blocks)]: ids, positions, slots, lengths, table
  std::vector<int64_t> host;  // what a step copies into `packed`
  at::Tensor out;             // the captured step's logits [rows, vocab]
#if TRIAD_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
};

absl::StatusOr<std::unique_ptr<DecodeGraphRunner>> DecodeGraphRunner::Create(const Model& model,
                                                                             KvPool& pool,
                                                                             int64_t max_rows,
                                                                             Mode mode) {
  if (dynamic_cast<const CausalModel*>(&model) == nullptr) {
    return absl::FailedPreconditionError(
        "decode graphs: an encoder-decoder model has no static decode step (GPT-1 and Llama do)");
  }
  if (max_rows < 1) return absl::InvalidArgumentError("decode graphs: max_rows must be >= 1");
  if (mode == Mode::kCapture) {
#if TRIAD_WITH_CUDA
    if (!model.placement().device.is_cuda()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "decode graphs: CUDA graphs need a cuda device, not ", model.placement().device.str()));
    }
#else
    return absl::FailedPreconditionError(
        "decode graphs: this build's LibTorch has no CUDA, so there are no CUDA graphs");
#endif
  }
  std::unique_ptr<DecodeGraphRunner> runner(new DecodeGraphRunner(model, pool, max_rows, mode));
  if (!pool.Allocate(1, runner->scratch_)) {
    return absl::ResourceExhaustedError(
        "decode graphs: the KV pool has no free block for the padding rows");
  }
  return runner;
}

DecodeGraphRunner::DecodeGraphRunner(const Model& model, KvPool& pool, int64_t max_rows, Mode mode)
    : model_(model),
      pool_(pool),
      max_rows_(max_rows),
      max_blocks_(pool.BlocksFor(model.config().max_positions > 0 ? model.config().max_positions
                                                                  : kUnlimitedContext)),
      mode_(mode) {}

DecodeGraphRunner::~DecodeGraphRunner() {
  buckets_.clear();  // the graphs go before the pool's block
  pool_.Free(scratch_);
}

int64_t DecodeGraphRunner::graphs() const {
  int64_t n = 0;
  for (const auto& [shape, bucket] : buckets_) n += bucket->out.defined() ? 1 : 0;
  return n;
}

bool DecodeGraphRunner::Applies(const std::vector<SequenceChunk>& chunks) const {
  if (chunks.empty() || static_cast<int64_t>(chunks.size()) > max_rows_) return false;
  for (const SequenceChunk& chunk : chunks) {
    if (chunk.all_logits || chunk.input_ids.numel() != 1) return false;
    const CausalSequence* seq = AsCausal(chunk);
    if (seq == nullptr || &seq->kv.pool() != &pool_) return false;
    if (pool_.BlocksFor(seq->kv.length() + 1) > max_blocks_) return false;
  }
  return true;
}

DecodeGraphRunner::Bucket& DecodeGraphRunner::BucketFor(int64_t rows, int64_t blocks) {
  std::unique_ptr<Bucket>& bucket = buckets_[{rows, blocks}];
  if (bucket != nullptr) return *bucket;
  bucket = std::make_unique<Bucket>();
  Bucket& b = *bucket;
  b.host.resize(static_cast<size_t>(rows * (4 + blocks)));
  b.packed = at::zeros({rows * (4 + blocks)},
                       at::TensorOptions().dtype(at::kLong).device(model_.placement().device));
  b.in.ids = b.packed.narrow(0, 0, rows).view({1, rows});
  b.in.positions = b.packed.narrow(0, rows, rows).view({1, rows});
  b.in.slots = b.packed.narrow(0, 2 * rows, rows);
  b.in.lengths = b.packed.narrow(0, 3 * rows, rows);
  b.in.table = b.packed.narrow(0, 4 * rows, rows * blocks);
  b.in.rows = rows;
  b.in.blocks = blocks;
  if (mode_ == Mode::kCapture) Capture(b);
  return b;
}

void DecodeGraphRunner::Capture(Bucket& b) {
#if TRIAD_WITH_CUDA
  const auto& causal = static_cast<const CausalModel&>(model_);
  try {
    c10::cuda::CUDAGuard device_guard(model_.placement().device);
    FillPadding(b.host, b.in.rows, scratch_[0], pool_.block_size());
    b.packed.copy_(at::from_blob(b.host.data(), {b.packed.numel()}, at::kLong));
    // Capture on a side stream (the default stream cannot be captured), after everything
    // queued so far; a first run outside the capture does the lazy set-up (cuBLAS handles
    // and workspaces) that must not happen inside it.
    c10::cuda::device_synchronize();
    c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
    {
      c10::cuda::CUDAStreamGuard stream_guard(stream);
      causal.StaticDecode(b.in, pool_);
      stream.synchronize();
      if (mempool_.first == 0 && mempool_.second == 0) {
        const at::cuda::MempoolId_t handle = at::cuda::graph_pool_handle();
        mempool_ = {handle.first, handle.second};
      }
      auto graph = std::make_unique<at::cuda::CUDAGraph>();
      // Thread-local capture: another model's scheduler thread may allocate or synchronise
      // meanwhile (LibTorch 1.13 has only the global mode).
#if TRIAD_TORCH_AT_LEAST(2, 0)
      graph->capture_begin({mempool_.first, mempool_.second}, cudaStreamCaptureModeThreadLocal);
#else
      graph->capture_begin({mempool_.first, mempool_.second});
#endif
      at::Tensor out;
      try {
        out = causal.StaticDecode(b.in, pool_);
      } catch (...) {
        try {
          graph->capture_end();  // ends the stream's capture; reports the failure
        } catch (...) {
        }
        throw;
      }
      graph->capture_end();
      b.graph = std::move(graph);
      b.out = out;
    }
    c10::cuda::device_synchronize();
  } catch (const std::exception& e) {
    b.graph.reset();
    b.out = at::Tensor();
    if (failed_++ == 0) {
      const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
      first_failure_ = absl::StrCat("capturing ", b.in.rows, " rows x ", b.in.blocks,
                                    " blocks: ",
                                    c10_error != nullptr ? compat::ErrorMessage(*c10_error)
                                                         : std::string(e.what()));
    }
  }
#else
  (void)b;
#endif
}

void DecodeGraphRunner::CaptureAll() {
  if (mode_ != Mode::kCapture) return;
  for (int64_t rows = 1;; rows = std::min(2 * rows, max_rows_)) {
    for (int64_t blocks = 1;; blocks = std::min(2 * blocks, max_blocks_)) {
      BucketFor(rows, blocks);
      if (blocks == max_blocks_) break;
    }
    if (rows == max_rows_) break;
  }
}

absl::StatusOr<at::Tensor> DecodeGraphRunner::Forward(const std::vector<SequenceChunk>& chunks) {
  return Guard("ForwardChunks", [&] {
    const int64_t n = static_cast<int64_t>(chunks.size());
    int64_t need = 1;
    for (const SequenceChunk& chunk : chunks) {
      need = std::max(need, pool_.BlocksFor(AsCausal(chunk)->kv.length() + 1));
    }
    Bucket& b = BucketFor(Bucketed(n, max_rows_), Bucketed(need, max_blocks_));
    const int64_t rows = b.in.rows, blocks = b.in.blocks;
    std::vector<int64_t>& host = b.host;
    FillPadding(host, rows, scratch_[0], pool_.block_size());
    std::vector<int64_t> slots;
    slots.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const SequenceChunk& chunk = chunks[static_cast<size_t>(i)];
      PagedKv& kv = static_cast<CausalSequence*>(chunk.state)->kv;
      const int64_t past = kv.length();
      kv.AppendSlots(1, slots);  // takes a block when the row starts one
      const at::Tensor id = chunk.input_ids.to(at::kCPU, at::kLong).contiguous();
      host[static_cast<size_t>(i)] = id.data_ptr<int64_t>()[0];
      host[static_cast<size_t>(rows + i)] = past;
      host[static_cast<size_t>(2 * rows + i)] = slots.back();
      host[static_cast<size_t>(3 * rows + i)] = past + 1;
      const int64_t used = pool_.BlocksFor(past + 1);
      std::copy(kv.blocks().begin(), kv.blocks().begin() + used,
                host.begin() + 4 * rows + i * blocks);
    }
    b.packed.copy_(at::from_blob(host.data(), {b.packed.numel()}, at::kLong));
    at::Tensor logits;
#if TRIAD_WITH_CUDA
    if (b.graph != nullptr) {
      b.graph->replay();
      logits = b.out.narrow(0, 0, n).clone();  // the next replay overwrites b.out
    }
#endif
    if (!logits.defined()) {
      logits = static_cast<const CausalModel&>(model_).StaticDecode(b.in, pool_).narrow(0, 0, n);
    }
    for (const SequenceChunk& chunk : chunks) static_cast<CausalSequence*>(chunk.state)->kv.Advance(1);
    return logits;
  });
}

}  // namespace triad
