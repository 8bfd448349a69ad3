// The model interface every architecture implements, the decoding state it keeps per batch,
// and the loader that turns a Hugging Face folder into a resident model.
//
// Thread contract: a Model is immutable after LoadModel (weights are never written) and may be
// shared; a DecoderState belongs to one thread at a time. Every public method returns a Status:
// LibTorch errors are caught here and never cross the library boundary.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/kv_pool.h"

namespace triad {

// Where and in what precision the weights live.
struct LoadOptions {
  std::string device = "cpu";    // "cpu", "cuda" or "cuda:N"
  std::string dtype = "float32"; // "float32", "bfloat16" or "float16"
};

struct Placement {
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};
absl::StatusOr<Placement> ParsePlacement(const LoadOptions& options);

// Runtime state of a batch of sequences being decoded together: KV caches, the key padding
// mask, and for T5 the encoder output's cross-attention keys/values.
class DecoderState {
 public:
  virtual ~DecoderState() = default;
  virtual int64_t batch_size() const = 0;
  // Decoder positions already in the cache.
  virtual int64_t length() const = 0;
  // Keeps rows `index` (int64 [B'], any order, repeats allowed): beam reordering.
  virtual void SelectRows(const at::Tensor& index) = 0;
};

// One sequence's decoding state for continuous batching: its keys and values in a KvPool's
// blocks (T5: and its encoder's), advancing independently of every other sequence. Destroying
// it returns its blocks to the pool.
class SequenceState {
 public:
  virtual ~SequenceState() = default;
  // Decoder positions already in the cache.
  virtual int64_t length() const = 0;
  // Pool blocks this sequence holds (T5: its encoder keys/values included).
  virtual int64_t blocks_held() const = 0;
  // Makes room for `num_tokens` more decoder positions, taking blocks from the pool; false
  // (taking none) when the pool has too few free. ForwardChunks takes what it needs itself,
  // so a scheduler calls this first only to learn, before the step, that the pool is short.
  virtual bool Reserve(int64_t num_tokens) = 0;
  // Prefix caching, for decoder-only models (others adopt nothing and register nothing).
  // On a sequence that has run nothing yet: adopts the pool's cached blocks for the longest
  // run of whole blocks of `tokens` (its tokens from position 0; at most `max_blocks`) and
  // returns the positions that skips: feed tokens from there on.
  virtual int64_t AdoptCachedPrefix(const std::vector<int64_t>& tokens, int64_t max_blocks) {
    (void)tokens;
    (void)max_blocks;
    return 0;
  }
  // Offers this sequence's full blocks to the pool's prefix cache (`tokens` as above).
  virtual void CachePrefix(const std::vector<int64_t>& tokens) { (void)tokens; }
  // A copy of this sequence in the same pool (beam search): full blocks shared, the partly
  // filled last block copied. Call through Model::ForkSequence (this throws KvPoolExhausted).
  virtual std::unique_ptr<SequenceState> Fork() const = 0;
  // What a static decode step (decode_graph.h) reads and appends to: the decoder's paged
  // self-attention keys/values, and T5's encoder keys/values (null for decoder-only models).
  virtual PagedKv* self_kv() { return nullptr; }
  virtual PagedKv* cross_kv() { return nullptr; }
};

// KV-cache bytes per decoder position of one sequence (keys + values, every layer), and for
// T5 per encoder position (cross-attention keys + values); what a scheduler budgets with.
int64_t KvBytesPerToken(const ModelConfig& config, at::ScalarType dtype);
int64_t CrossKvBytesPerToken(const ModelConfig& config, at::ScalarType dtype);
// KV bytes one sequence holds at most: decoder-only `prompt_tokens + max_new_tokens`
// positions; T5 `1 + max_new_tokens` decoder positions plus the cross-attention K/V of
// `prompt_tokens` encoder positions.
int64_t SequenceKvBytes(const ModelConfig& config, at::ScalarType dtype, int64_t prompt_tokens,
                        int64_t max_new_tokens);

// Some tokens of one sequence in a ragged step: a prefill chunk or one decode token.
struct SequenceChunk {
  SequenceState* state = nullptr;  // appended to; at most once per step
  at::Tensor input_ids;            // [T] int64, T >= 1
  bool all_logits = false;         // return the logits of every position, not only the last
};

// The chunks' input ids end to end, [1, total] int64 on `device`: gathered on the host and sent
// once, since an ATen call per chunk is host work that a GPU step waits on.
at::Tensor ConcatChunkIds(const std::vector<SequenceChunk>& chunks, const at::Device& device);

// One decoder step for a batch (prefill when T > 1).
struct StepInput {
  at::Tensor input_ids;       // [B, T] int64, any device
  at::Tensor attention_mask;  // [B, T] for the new tokens, nonzero = real; undefined = all real
  at::Tensor position_ids;    // [B, T]; undefined = length()..length()+T-1. Unused by T5.
  bool last_logits_only = false;  // return logits of the last position only ([B, 1, V])
};

// T5 input: the encoder side of a batch.
struct EncoderInput {
  at::Tensor input_ids;       // [B, S] int64
  at::Tensor attention_mask;  // [B, S]; undefined = all real
};

struct MultipleChoiceOutput {
  at::Tensor mc_logits;  // [B, C] float32
  at::Tensor lm_logits;  // [B, C, T, V] float32
};

struct StaticDecodeInputs;  // attention_context.h

class Model {
 public:
  virtual ~Model() = default;
  const ModelConfig& config() const { return config_; }
  const Placement& placement() const { return placement_; }
  // Bytes of the resident weights.
  int64_t weight_bytes() const { return weight_bytes_; }

  // A fresh decoding state for `batch_size` rows. T5 requires `encoder` (runs the encoder
  // and caches the cross-attention keys/values); decoder-only models ignore it.
  absl::StatusOr<std::unique_ptr<DecoderState>> NewState(int64_t batch_size,
                                                         const EncoderInput* encoder) const;
  // Runs `input` through the decoder, appending to `state`; returns float32 logits [B, T, V]
  // on the model's device.
  absl::StatusOr<at::Tensor> Forward(const StepInput& input, DecoderState& state) const;
  // Continuous batching. The pool of KV blocks that this model's sequences share:
  // `num_blocks` blocks of `block_size` positions in the serving dtype on the model's device.
  absl::StatusOr<std::unique_ptr<KvPool>> NewKvPool(int64_t num_blocks,
                                                    int64_t block_size = 16) const;
  // A new sequence with its KV in `pool` (made by NewKvPool of this model). T5: `encoder_ids`
  // [S] is required and encoded now, its cross-attention keys/values taking
  // ceil(S / block_size) blocks; RESOURCE_EXHAUSTED when the pool cannot hold them.
  absl::StatusOr<std::unique_ptr<SequenceState>> NewSequence(KvPool& pool,
                                                             const at::Tensor* encoder_ids) const;
  // NewSequence for several sequences at once (one `encoder_ids` entry each, null for
  // decoder-only models). T5 runs their encoders as one padded batch, equal to encoding each
  // alone (to rounding); each sequence keeps only its own positions' cross-attention keys and
  // values. An error covers the whole call.
  absl::StatusOr<std::vector<std::unique_ptr<SequenceState>>> NewSequences(
      KvPool& pool, const std::vector<const at::Tensor*>& encoder_ids) const;
  // A sequence equal to `source` (same pool, same keys and values) that then advances on its
  // own: beam search. Shares the full blocks and copies the partly filled one, so it takes at
  // most one block; RESOURCE_EXHAUSTED when that block is not free.
  absl::StatusOr<std::unique_ptr<SequenceState>> ForkSequence(const SequenceState& source) const;
  // Runs every chunk as one ragged batch: the linear layers see all tokens at once, attention
  // runs per sequence over its own cache. Returns float32 logits [rows, V]: per chunk, in
  // order, its last token's row (all T rows with all_logits). Equal (to rounding) to running
  // each sequence alone. Takes the blocks the new positions need; RESOURCE_EXHAUSTED when the
  // pool runs out (the sequences' lengths are then unchanged, but blocks taken stay with their
  // sequences).
  absl::StatusOr<at::Tensor> ForwardChunks(const std::vector<SequenceChunk>& chunks) const;
  // ForwardChunks with the checkpoint's classification head (as HeadLogits) in place of the LM
  // head: float32 [rows, head_outputs()]. GPT-1 heads run a shared context once this way (a
  // multiple-choice context, forked per choice). UNIMPLEMENTED without such a head.
  absl::StatusOr<at::Tensor> HeadChunks(const std::vector<SequenceChunk>& chunks) const;
  // T5: encoder last_hidden_state [B, S, d_model] in the serving dtype.
  absl::StatusOr<at::Tensor> Encode(const EncoderInput& input) const;
  // GPT-1 sequence-classification head: float32 [B, num_labels], read at HF's position.
  absl::StatusOr<at::Tensor> ClassifySequence(const at::Tensor& input_ids,
                                              const at::Tensor& attention_mask) const;
  // GPT-1 double-heads: input_ids [B, C, T], mc_token_ids [B, C].
  absl::StatusOr<MultipleChoiceOutput> MultipleChoice(const at::Tensor& input_ids,
                                                      const at::Tensor& mc_token_ids) const;
  // The checkpoint's classification head (GPT-1: sequence-classification `score`, or the
  // double-heads multiple-choice summary) over rows of `input_ids` [N, T] (right-padded; the
  // padding value is irrelevant) read at `read_index` [N] (int64, each < T). Returns float32
  // [N, head_outputs()]; no LM logits are computed. UNIMPLEMENTED without such a head.
  absl::StatusOr<at::Tensor> HeadLogits(const at::Tensor& input_ids,
                                        const at::Tensor& read_index) const;
  // Outputs of that head: num_labels (sequence classification), 1 (multiple choice), 0 = none.
  int64_t head_outputs() const;

  // One decode step over fixed-shape inputs (GPT-1, Llama, T5): what DecodeGraphRunner
  // captures in a CUDA graph. Float32 logits [in.rows, vocab]; writes each row's keys and
  // values to its slot; reads nothing from the host. Throws where HasStaticDecode() is false.
  virtual bool HasStaticDecode() const { return false; }
  virtual at::Tensor StaticDecode(const StaticDecodeInputs& in, const KvPool& pool) const;
  // The most decoder positions (self) and encoder positions (cross, 0 = no cross-attention)
  // a static step takes; longer sequences decode the ordinary way.
  virtual int64_t StaticDecodePositions() const { return 0; }
  virtual int64_t StaticDecodeCrossPositions() const { return 0; }
  // ForwardChunks' argument checks (INVALID_ARGUMENT naming chunks[i]), for the other paths
  // that run chunks (DecodeGraphRunner).
  absl::Status CheckChunks(const std::vector<SequenceChunk>& chunks) const;

 protected:
  Model(ModelConfig config, Placement placement)
      : config_(std::move(config)), placement_(placement) {}
  void set_weight_bytes(int64_t bytes) { weight_bytes_ = bytes; }

  virtual std::unique_ptr<DecoderState> NewStateImpl(int64_t batch_size,
                                                     const EncoderInput* encoder) const = 0;
  virtual at::Tensor ForwardImpl(const StepInput& input, DecoderState& state) const = 0;
  virtual std::unique_ptr<SequenceState> NewSequenceImpl(KvPool& pool,
                                                         const at::Tensor* encoder_ids) const = 0;
  // Default: NewSequenceImpl for each.
  virtual std::vector<std::unique_ptr<SequenceState>> NewSequencesImpl(
      KvPool& pool, const std::vector<const at::Tensor*>& encoder_ids) const;
  virtual at::Tensor ForwardChunksImpl(const std::vector<SequenceChunk>& chunks) const = 0;
  virtual at::Tensor HeadChunksImpl(const std::vector<SequenceChunk>& chunks) const;
  virtual at::Tensor EncodeImpl(const EncoderInput& input) const;
  virtual at::Tensor ClassifySequenceImpl(const at::Tensor& input_ids,
                                          const at::Tensor& attention_mask) const;
  virtual MultipleChoiceOutput MultipleChoiceImpl(const at::Tensor& input_ids,
                                                  const at::Tensor& mc_token_ids) const;
  virtual at::Tensor HeadLogitsImpl(const at::Tensor& input_ids,
                                    const at::Tensor& read_index) const;

  // The shape of this model's KV pool (block size aside).
  KvPoolShape PoolShape() const;

  // Thrown by the *Impl defaults; turned into UNIMPLEMENTED by the public wrappers.
  struct Unsupported {
    std::string what;
  };

 private:
  ModelConfig config_;
  Placement placement_;
  int64_t weight_bytes_ = 0;
};

// Loads `<model_dir>` (config.json, generation_config.json, model.safetensors or its sharded
// index) onto `options.device` in `options.dtype`. The checkpoint is memory-mapped and
// converted tensor by tensor, so the weights are never held twice.
absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& model_dir,
                                                 const LoadOptions& options);

}  // namespace triad
