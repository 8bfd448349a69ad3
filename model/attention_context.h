// AttentionContext: how a decoder layer's attention reaches its keys and values, so each
// architecture writes its layer loop once and runs it over either
//  - a padded batch advancing together (BatchAttention: one KvCache, one additive mask), or
//  - a ragged batch (RaggedAttention): the concatenated tokens of several independent
//    sequences, each with its own paged cache and length, as a continuous-batching scheduler
//    builds them. The linear layers then see every token at once; attention runs per
//    sequence, and on CPU the single-token (decode) queries of a step run as one
//    PagedDecodeAttention call reading the pool blocks in place.
// A context lives for one forward call, on the thread that makes it.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "model/kv_pool.h"
#include "model/layers.h"

namespace triad {

class AttentionContext {
 public:
  virtual ~AttentionContext() = default;
  // Self-attention of the step's tokens. q [B, H, T, D]; k, v [B, Hkv, T, D] are the step's
  // new keys/values, appended to the cache(s). Returns [B, H, T, D].
  virtual at::Tensor SelfAttend(int64_t layer, const at::Tensor& q, const at::Tensor& k,
                                const at::Tensor& v, double scale) = 0;
  // Cross-attention (T5) over the encoder keys/values of `layer`; q [B, H, T, D].
  virtual at::Tensor CrossAttend(int64_t layer, const at::Tensor& q, double scale) = 0;
};

class BatchAttention : public AttentionContext {
 public:
  // `bias`: additive [B or 1, 1 or H, T, past + T] or undefined.
  BatchAttention(KvCache& cache, at::Tensor bias) : cache_(cache), bias_(std::move(bias)) {}
  // T5: per-layer encoder keys/values [B, H, S, D] and the encoder padding mask.
  void SetCross(const std::vector<at::Tensor>* keys, const std::vector<at::Tensor>* values,
                at::Tensor mask) {
    cross_keys_ = keys;
    cross_values_ = values;
    cross_mask_ = std::move(mask);
  }
  at::Tensor SelfAttend(int64_t layer, const at::Tensor& q, const at::Tensor& k,
                        const at::Tensor& v, double scale) override;
  at::Tensor CrossAttend(int64_t layer, const at::Tensor& q, double scale) override;

 private:
  KvCache& cache_;
  at::Tensor bias_;
  const std::vector<at::Tensor>* cross_keys_ = nullptr;
  const std::vector<at::Tensor>* cross_values_ = nullptr;
  at::Tensor cross_mask_;
};

// One sequence of a ragged batch: its paged keys/values (appended to) and, for T5, its
// encoder's.
struct RaggedSequence {
  PagedKv* kv;                     // self-attention keys/values
  int64_t num_tokens;              // tokens of this sequence in the step
  const PagedKv* cross = nullptr;  // T5: cross-attention keys/values of its encoder positions
};

// Per sequence, prefill chunks gather their blocks and run the eager attention. Single-token
// (decode) queries run together: on CPU through PagedDecodeAttention, reading the blocks in
// place; elsewhere (CUDA) as one padded batch gathered with a single index_select per layer.
// On CPU chunks join the kernel call too, one query per token, each attending up to its own
// position, rather than each gathering its whole cache and building a [T, past + T] score
// matrix: every chunk when the bias is only the causal mask (GPT-1, Llama), and chunks of up
// to kMaxKernelChunk tokens otherwise (T5's decoder: scored candidates, a beam's or a
// preempted sequence's last tokens), whose per-query bias rows cost a few ATen calls each.
// A 1024-token Llama-110m prefill took 5.4 s through the eager path (mostly first-touch page
// faults on its 48 MB score tensors per layer) and 1.3 s through the kernel.
// What does not change between layers (block indices, biases, masks) is built at the first
// layer of the step and reused.
class RaggedAttention : public AttentionContext {
 public:
  static constexpr int64_t kMaxKernelChunk = 16;
  // bias(past, steps): additive bias [1, 1 or H, steps, past + steps] for one sequence's
  // queries past..past+steps-1, or undefined when nothing is masked.
  // `causal_only`: the bias is nothing but the causal mask, which the kernel's queries do not
  // need (each stops at its own position).
  using BiasFn = std::function<at::Tensor(int64_t past, int64_t steps)>;
  RaggedAttention(std::vector<RaggedSequence> sequences, BiasFn bias, bool causal_only = false)
      : sequences_(std::move(sequences)), bias_(std::move(bias)), causal_only_(causal_only) {}
  at::Tensor SelfAttend(int64_t layer, const at::Tensor& q, const at::Tensor& k,
                        const at::Tensor& v, double scale) override;
  at::Tensor CrossAttend(int64_t layer, const at::Tensor& q, double scale) override;

 private:
  struct Plan {
    bool built = false;
    std::vector<int64_t> keys;       // per sequence: positions attended to
    std::vector<at::Tensor> index;   // per prefill sequence: its blocks (for PagedKv::Gather)
    std::vector<at::Tensor> bias;    // per prefill sequence: bias_(past, steps) or undefined
    std::vector<size_t> decode_of;   // the sequence of each decode query
    std::vector<int64_t> first_query;  // per sequence: its first decode query, -1 = gathered
    at::Tensor decode_rows;          // [n] rows of the step's queries, on the device
    std::vector<PagedQuery> decode;  // CPU kernel path
    at::Tensor table;                // padded path: [n * max_blocks] block ids
    at::Tensor mask;                 // padded path: additive [n, 1 or H, 1, max_keys]
    at::Tensor invalid;              // padded path: [n, 1, max_keys, 1], true past each length
    int64_t max_blocks = 0;
    // Two or more gathered sequences: one padded batch (BuildGatheredBatch), the same fields
    // for its n sequences, max_tokens query rows each.
    std::vector<size_t> batch_of;    // the sequences in the batch, in step order
    at::Tensor batch_table;          // [n * batch_blocks] block ids
    at::Tensor batch_rows;           // [n * batch_tokens] q rows (padding: row 0)
    at::Tensor batch_out_rows;       // [their tokens] rows of the padded output, in step order
    at::Tensor batch_mask;           // additive [n, 1 or H, batch_tokens, batch keys]
    at::Tensor batch_invalid;        // [n, 1, batch keys, 1], true past each sequence's keys
    int64_t batch_tokens = 0, batch_blocks = 0;
  };
  // Built from the sequences' current lengths and block tables (self: after the first layer
  // has written the step's keys, before Advance).
  void BuildPlan(Plan& plan, bool cross, const at::Tensor& q) const;
  at::Tensor Attend(int64_t layer, const at::Tensor& q, double scale, bool cross);
  // [n, H, 1, D] for the step's decode queries; `all_rows`: they are all of q's rows, in order.
  at::Tensor PaddedDecode(const Plan& plan, int64_t layer, const at::Tensor& q, double scale,
                          bool cross, bool all_rows) const;
  // Fills the plan's batch_* fields for the `gathered` sequences (rows from `offsets`); false
  // when they gather one by one instead (fewer than two, or too much padding).
  bool BuildGatheredBatch(Plan& plan, bool cross, const at::Tensor& q,
                          const std::vector<size_t>& gathered,
                          const std::vector<int64_t>& offsets) const;
  // [H, tokens of the batch, D] for the batched sequences' rows, in step order.
  at::Tensor GatheredBatch(const Plan& plan, int64_t layer, const at::Tensor& q, double scale,
                           bool cross) const;

  std::vector<RaggedSequence> sequences_;
  BiasFn bias_;
  bool causal_only_;
  Plan self_plan_, cross_plan_;
  at::Tensor write_slots_;  // [step tokens] pool slots of the new keys (built at layer 0)
};

// The inputs of one fixed-shape decode step (DecodeGraphRunner): `rows` single-token queries,
// each attending to at most `blocks` pool blocks (T5: and to at most `cross_blocks` blocks of
// its encoder's keys). Every tensor is int64 on the pool's device.
struct StaticDecodeInputs {
  at::Tensor ids;        // [1, rows]
  at::Tensor positions;  // [1, rows]
  at::Tensor slots;      // [rows] the pool slot each row's new key and value go to
  at::Tensor lengths;    // [rows] the keys each row attends to (its position + 1)
  at::Tensor table;      // [rows * blocks] block ids, row-major; unused entries any valid block
  at::Tensor cross_lengths;  // [rows] T5: encoder positions each row attends to
  at::Tensor cross_table;    // [rows * cross_blocks] T5: the encoder keys' blocks
  int64_t rows = 0, blocks = 0, cross_blocks = 0;  // cross_blocks 0: no cross-attention
};

// Where a model has no position limit, static steps take sequences up to this many positions.
constexpr int64_t kUnlimitedStaticPositions = 65536;

// Self-attention of a fixed-shape decode step over the pool, as RaggedAttention's padded
// decode batch computes it, with every shape set by the inputs' sizes and nothing read from
// the host while it runs: what a CUDA graph can capture and replay with new inputs.
class StaticDecodeAttention : public AttentionContext {
 public:
  // `self_bias`: additive [rows, 1 or H, 1, blocks * block_size] (T5's relative positions),
  // or undefined.
  StaticDecodeAttention(const KvPool& pool, const StaticDecodeInputs& in,
                        at::Tensor self_bias = at::Tensor())
      : pool_(pool), in_(in), self_bias_(std::move(self_bias)) {}
  at::Tensor SelfAttend(int64_t layer, const at::Tensor& q, const at::Tensor& k,
                        const at::Tensor& v, double scale) override;
  // T5: over each row's encoder keys (in.cross_table, in.cross_lengths).
  at::Tensor CrossAttend(int64_t layer, const at::Tensor& q, double scale) override;

 private:
  struct Keys {
    at::Tensor mask, invalid;  // additive [rows, 1, 1, keys]; [rows, 1, keys, 1] past each length
  };
  // Built at the first layer: the keys past each row's length masked (and `bias` added).
  Keys BuildKeys(const at::Tensor& lengths, int64_t keys, const at::Tensor& q,
                 const at::Tensor& bias) const;
  // softmax(q k^T * scale + mask) v of the step's rows over the blocks of `table`.
  at::Tensor Attend(int64_t layer, const at::Tensor& q, double scale, const at::Tensor& table,
                    int64_t blocks, const Keys& keys) const;

  const KvPool& pool_;
  const StaticDecodeInputs& in_;
  at::Tensor self_bias_;
  Keys self_, cross_;
};

}  // namespace triad
