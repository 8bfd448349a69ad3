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

class RaggedAttention : public AttentionContext {
 public:
  // bias(past, steps): additive bias [1, 1 or H, steps, past + steps] for one sequence's
  // queries past..past+steps-1, or undefined when nothing is masked.
  using BiasFn = std::function<at::Tensor(int64_t past, int64_t steps)>;
  RaggedAttention(std::vector<RaggedSequence> sequences, BiasFn bias)
      : sequences_(std::move(sequences)), bias_(std::move(bias)) {}
  at::Tensor SelfAttend(int64_t layer, const at::Tensor& q, const at::Tensor& k,
                        const at::Tensor& v, double scale) override;
  at::Tensor CrossAttend(int64_t layer, const at::Tensor& q, double scale) override;

 private:
  // Attention of each sequence's queries over its self (cross = false) or encoder keys, the
  // new keys already written; decode queries on CPU through PagedDecodeAttention.
  at::Tensor Attend(int64_t layer, const at::Tensor& q, double scale, bool cross) const;

  std::vector<RaggedSequence> sequences_;
  BiasFn bias_;
};

}  // namespace triad
