#include "model/decode_graph.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/attention_context.h"
#include "model/compat.h"
#include "model/guard.h"
#include "model/status_macros.h"

#if TRIAD_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace triad {
namespace {

// The smallest power of two >= n, at most `cap` (itself a bucket, power of two or not).
int64_t Bucketed(int64_t n, int64_t cap) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return std::min(b, cap);
}

// The packed inputs of `rows` rows: ids, positions, slots, lengths, cross lengths (one per
// row each), then the block table (`blocks` per row) and the cross table (`cross_blocks`).
int64_t PackedSize(int64_t rows, int64_t blocks, int64_t cross_blocks) {
  return rows * (5 + blocks + cross_blocks);
}

// Every row a padding row: token 0 at position 0, written to the scratch block (row i to its
// slot i % block_size, so that no two rows of a step write one slot) and attending to the
// block's first key (and first encoder key).
void FillPadding(std::vector<int64_t>& host, int64_t rows, int64_t scratch_block,
                 int64_t block_size) {
  std::fill(host.begin(), host.begin() + 2 * rows, 0);
  for (int64_t i = 0; i < rows; ++i) {
    host[static_cast<size_t>(2 * rows + i)] = scratch_block * block_size + i % block_size;
  }
  std::fill(host.begin() + 3 * rows, host.begin() + 5 * rows, 1);
  std::fill(host.begin() + 5 * rows, host.end(), scratch_block);
}

}  // namespace

struct DecodeGraphRunner::Bucket {
  StaticDecodeInputs in;      // views of `packed`
  at::Tensor packed;          // PackedSize(rows, blocks, cross blocks) int64
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
  if (!model.HasStaticDecode()) {
    return absl::FailedPreconditionError("decode graphs: the model has no static decode step");
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
      max_blocks_(pool.BlocksFor(model.StaticDecodePositions())),
      max_cross_blocks_(pool.BlocksFor(model.StaticDecodeCrossPositions())),
      mode_(mode) {}

DecodeGraphRunner::~DecodeGraphRunner() {
  buckets_.clear();  // the graphs go before the pool's block
  pool_.Free(scratch_);
}

bool DecodeGraphRunner::Applies(const std::vector<SequenceChunk>& chunks) const {
  if (chunks.empty() || static_cast<int64_t>(chunks.size()) > max_rows_) return false;
  for (const SequenceChunk& chunk : chunks) {
    if (chunk.all_logits || chunk.input_ids.numel() != 1) return false;
    const PagedKv* self = chunk.state->self_kv();
    if (self == nullptr || &self->pool() != &pool_) return false;
    if (pool_.BlocksFor(self->length() + 1) > max_blocks_) return false;
    const PagedKv* cross = chunk.state->cross_kv();
    if ((cross != nullptr) != (max_cross_blocks_ > 0)) return false;
    if (cross != nullptr && pool_.BlocksFor(cross->length()) > max_cross_blocks_) return false;
  }
  return true;
}

DecodeGraphRunner::Bucket& DecodeGraphRunner::BucketFor(int64_t rows, int64_t blocks,
                                                        int64_t cross_blocks) {
  std::unique_ptr<Bucket>& bucket = buckets_[{rows, blocks, cross_blocks}];
  if (bucket != nullptr) return *bucket;
  bucket = std::make_unique<Bucket>();
  Bucket& b = *bucket;
  const int64_t size = PackedSize(rows, blocks, cross_blocks);
  b.host.resize(static_cast<size_t>(size));
  b.packed = at::zeros({size}, at::TensorOptions().dtype(at::kLong).device(model_.placement().device));
  b.in.ids = b.packed.narrow(0, 0, rows).view({1, rows});
  b.in.positions = b.packed.narrow(0, rows, rows).view({1, rows});
  b.in.slots = b.packed.narrow(0, 2 * rows, rows);
  b.in.lengths = b.packed.narrow(0, 3 * rows, rows);
  b.in.cross_lengths = b.packed.narrow(0, 4 * rows, rows);
  b.in.table = b.packed.narrow(0, 5 * rows, rows * blocks);
  b.in.cross_table = b.packed.narrow(0, rows * (5 + blocks), rows * cross_blocks);
  b.in.rows = rows;
  b.in.blocks = blocks;
  b.in.cross_blocks = cross_blocks;
  if (mode_ == Mode::kCapture) Capture(b);
  return b;
}

void DecodeGraphRunner::Capture(Bucket& b) {
#if TRIAD_WITH_CUDA
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
      model_.StaticDecode(b.in, pool_);
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
        out = model_.StaticDecode(b.in, pool_);
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
    ++captured_;
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

void DecodeGraphRunner::CaptureAll(int64_t positions, int64_t cross_positions) {
  if (mode_ != Mode::kCapture || (max_cross_blocks_ > 0 && cross_positions <= 0)) return;
  const int64_t last = positions > 0 ? Bucketed(pool_.BlocksFor(positions), max_blocks_)
                                     : max_blocks_;
  const int64_t last_cross =
      max_cross_blocks_ > 0 ? Bucketed(pool_.BlocksFor(cross_positions), max_cross_blocks_) : 0;
  // Each bucket size from 1 up to `cap`, the last one `cap` itself (0: just 0).
  auto sizes = [](int64_t cap) {
    std::vector<int64_t> out;
    for (int64_t n = cap > 0 ? 1 : 0;; n = std::min(2 * n, cap)) {
      out.push_back(n);
      if (n == cap) return out;
    }
  };
  for (const int64_t rows : sizes(max_rows_)) {
    for (const int64_t blocks : sizes(last)) {
      for (const int64_t cross : sizes(last_cross)) BucketFor(rows, blocks, cross);
    }
  }
}

absl::StatusOr<at::Tensor> DecodeGraphRunner::Forward(const std::vector<SequenceChunk>& chunks) {
  TRIAD_RETURN_IF_ERROR(model_.CheckChunks(chunks));
  return Replay(chunks);
}

absl::StatusOr<at::Tensor> DecodeGraphRunner::Replay(const std::vector<SequenceChunk>& chunks) {
  return Guard("ForwardChunks", [&] {
    const int64_t n = static_cast<int64_t>(chunks.size());
    int64_t need = 1, cross_need = 0;
    for (const SequenceChunk& chunk : chunks) {
      need = std::max(need, pool_.BlocksFor(chunk.state->self_kv()->length() + 1));
      const PagedKv* cross = chunk.state->cross_kv();
      if (cross != nullptr) cross_need = std::max(cross_need, pool_.BlocksFor(cross->length()));
    }
    Bucket& b = BucketFor(Bucketed(n, max_rows_), Bucketed(need, max_blocks_),
                          max_cross_blocks_ > 0 ? Bucketed(cross_need, max_cross_blocks_) : 0);
    const int64_t rows = b.in.rows, blocks = b.in.blocks, cross_blocks = b.in.cross_blocks;
    std::vector<int64_t>& host = b.host;
    FillPadding(host, rows, scratch_[0], pool_.block_size());
    const at::Tensor ids = ConcatChunkIds(chunks, at::kCPU);
    std::vector<int64_t> slots;
    slots.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const SequenceChunk& chunk = chunks[static_cast<size_t>(i)];
      PagedKv& kv = *chunk.state->self_kv();
      const int64_t past = kv.length();
      kv.AppendSlots(1, slots);  // takes a block when the row starts one
      host[static_cast<size_t>(i)] = ids.data_ptr<int64_t>()[i];
      host[static_cast<size_t>(rows + i)] = past;
      host[static_cast<size_t>(2 * rows + i)] = slots.back();
      host[static_cast<size_t>(3 * rows + i)] = past + 1;
      std::copy(kv.blocks().begin(), kv.blocks().begin() + pool_.BlocksFor(past + 1),
                host.begin() + 5 * rows + i * blocks);
      if (const PagedKv* cross = chunk.state->cross_kv(); cross != nullptr) {
        host[static_cast<size_t>(4 * rows + i)] = cross->length();
        std::copy(cross->blocks().begin(),
                  cross->blocks().begin() + pool_.BlocksFor(cross->length()),
                  host.begin() + rows * (5 + blocks) + i * cross_blocks);
      }
    }
    b.packed.copy_(at::from_blob(host.data(), {b.packed.numel()}, at::kLong));
    at::Tensor logits;
#if TRIAD_WITH_CUDA
    if (b.graph != nullptr) {
      b.graph->replay();
      logits = b.out.narrow(0, 0, n).clone();  // the next replay overwrites b.out
    }
#endif
    if (!logits.defined()) logits = model_.StaticDecode(b.in, pool_).narrow(0, 0, n);
    for (const SequenceChunk& chunk : chunks) chunk.state->self_kv()->Advance(1);
    return logits;
  });
}

absl::StatusOr<at::Tensor> DecodeGraphRunner::Step(const std::vector<SequenceChunk>& chunks,
                                                   StepPath* path) {
  *path = StepPath::kChunks;
  if (Applies(chunks)) {
    *path = StepPath::kRunner;
    return Forward(chunks);
  }
  std::vector<SequenceChunk> decode, prompts;
  for (const SequenceChunk& chunk : chunks) {
    if (chunk.all_logits) return model_.ForwardChunks(chunks);  // rows beyond one per chunk
    (chunk.input_ids.numel() == 1 ? decode : prompts).push_back(chunk);
  }
  if (decode.empty() || prompts.empty() || !Applies(decode)) return model_.ForwardChunks(chunks);
  TRIAD_RETURN_IF_ERROR(model_.CheckChunks(chunks));  // nothing runs for a bad chunk
  TRIAD_ASSIGN_OR_RETURN(const at::Tensor decoded, Replay(decode));
  TRIAD_ASSIGN_OR_RETURN(const at::Tensor prompted, model_.ForwardChunks(prompts));
  *path = StepPath::kSplit;
  // Both are float32 [chunks, V]; chunk i's row in [decoded; prompted] is the count of its kind
  // before it (a prompt's after every decode row).
  std::vector<int64_t> order(chunks.size());
  int64_t next_decode = 0, next_prompt = static_cast<int64_t>(decode.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    order[i] = chunks[i].input_ids.numel() == 1 ? next_decode++ : next_prompt++;
  }
  return at::cat({decoded, prompted})
      .index_select(0, at::tensor(order, at::kLong).to(decoded.device()));
}

}  // namespace triad
