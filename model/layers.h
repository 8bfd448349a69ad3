// Shared building blocks of the three architectures: linear layers, norms, activations,
// attention (with GQA), rotary embeddings and the key/value cache. Stateless functions and
// plain weight holders; a KvCache belongs to one decoding state and is used by one thread.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace triad {

// y = x W^T + b with W stored [out, in] (nn.Linear layout; GPT-1's Conv1D weights are
// transposed at load). Small row counts on CPU go to triad_kernels' matrix-vector kernels,
// which stream the weights once; everything else goes to ATen.
struct Linear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
  at::Tensor operator()(const at::Tensor& x) const;
};

// One Linear computing all of `parts` (their outputs concatenated in order), so a decode step
// makes one pass over the input and one kernel call instead of several.
Linear ConcatLinears(const std::vector<Linear>& parts);

// Enables or disables the CPU kernels (small-batch linear layers and paged decode attention;
// on by default; tests compare both paths).
void SetUseCpuKernels(bool enabled);
bool UseCpuKernels();

at::Tensor LayerNorm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     double eps);

// HF T5LayerNorm / LlamaRMSNorm: the mean square is taken in fp32, the result is cast to the
// weight's dtype (the serving dtype; T5's fp32 residual stream in bf16 comes back to bf16 here)
// and then scaled by the weight.
at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// "relu", "silu", "gelu" (erf) or "gelu_new" (tanh approximation).
at::Tensor Activation(const std::string& name, const at::Tensor& x);

// x in `type`, without an ATen call when it already is (a same-type `to` is a no-op but still a
// dispatch, which a GPU decode step, bound by dispatch, pays for).
at::Tensor ToType(const at::Tensor& x, at::ScalarType type);

// Additive masks use the dtype's lowest finite value, as HF does: a fully masked row then gets
// a uniform softmax instead of NaN.
double MaskValue(at::ScalarType dtype);

// softmax(q k^T * scale + bias) v, the softmax in fp32 (HF eager semantics).
// q [B, H, Tq, D]; k, v [B, Hkv, Tk, D] with H a multiple of Hkv (query head h uses kv head
// h / (H / Hkv)); bias broadcastable to [B, H, Tq, Tk] or undefined. Returns [B, H, Tq, D].
at::Tensor Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& bias, double scale);

// rotate_half: the last dimension's halves swapped, the new first half negated.
at::Tensor RotateHalf(const at::Tensor& x);
// HF's apply_rotary_pos_emb for one of q, k: x * cos + rotate_half(x) * sin, x [B, H, T, D]
// (SplitHeads' view) and cos / sin [B or 1, 1, T, D]. On the CPU in float32 one loop does it,
// with the expression's three roundings (two products, their sum; the library is built without
// contracting them into a fused multiply-add), into a tensor laid out [B, T, H, D] as the
// expression's result is (it follows x's strides): seven ATen calls per tensor and layer
// become one pass (at 80 rows they took ~80 us). Elsewhere, the expression.
at::Tensor ApplyRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// [B, T, H*D] -> [B, H, T, D] and back.
at::Tensor SplitHeads(const at::Tensor& x, int64_t num_heads);
at::Tensor MergeHeads(const at::Tensor& x);

// Additive attention mask [B, 1, Tq, Tk] for queries at absolute positions past..past+Tq-1
// over keys 0..Tk-1: causal (when `causal`) and key padding (`key_mask` [B, Tk], nonzero =
// real; undefined = all real). Returns an undefined tensor when nothing is masked.
at::Tensor BuildAttentionMask(const at::Tensor& key_mask, int64_t batch, int64_t past,
                              int64_t num_queries, bool causal, at::ScalarType dtype,
                              const at::Device& device);

// Per-layer key/value storage for a batch of sequences that advance together (the padded-batch
// path: Generate, beam search, classification; continuous batching uses the paged pool of
// model/kv_pool.h). Grows by doubling; Append writes the new step's keys and values and
// returns views over everything cached so far (including the new step). Call Advance once all
// layers have appended.
class KvCache {
 public:
  explicit KvCache(int64_t num_layers) : keys_(num_layers), values_(num_layers) {}
  int64_t length() const { return length_; }
  std::pair<at::Tensor, at::Tensor> Append(int64_t layer, const at::Tensor& k,
                                           const at::Tensor& v);
  void Advance(int64_t num_tokens) { length_ += num_tokens; }
  // Keeps rows `index` (int64 [B']) in that order: beam reordering, dropping finished rows.
  void SelectRows(const at::Tensor& index);

 private:
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
  int64_t length_ = 0;
};

}  // namespace triad
