// CausalState: the decoding state of decoder-only models (GPT-1, Llama): one KV cache plus
// the key padding mask accumulated over every step (left-padded prompts). Used by one thread.
#pragma once

#include <ATen/ATen.h>

#include "model/layers.h"
#include "model/model.h"

namespace triad {

class CausalState : public DecoderState {
 public:
  CausalState(int64_t num_layers, int64_t batch_size) : cache_(num_layers), batch_(batch_size) {}

  int64_t batch_size() const override { return batch_; }
  int64_t length() const override { return cache_.length(); }
  void SelectRows(const at::Tensor& index) override {
    cache_.SelectRows(index);
    if (key_mask_.defined()) key_mask_ = key_mask_.index_select(0, index.to(key_mask_.device()));
    batch_ = index.size(0);
  }
  KvCache& cache() { return cache_; }

  // Appends the step's padding mask ([B, T] or undefined = all real) and returns the mask over
  // every key including the step's, or undefined while nothing has ever been padded.
  at::Tensor ExtendKeyMask(const at::Tensor& step_mask, int64_t num_new, const at::Device& device) {
    if (!step_mask.defined() && !key_mask_.defined()) return at::Tensor();
    const auto opts = at::TensorOptions().dtype(at::kBool).device(device);
    at::Tensor step = step_mask.defined() ? step_mask.to(device).ne(0)
                                          : at::ones({batch_, num_new}, opts);
    at::Tensor past = key_mask_.defined() ? key_mask_ : at::ones({batch_, length()}, opts);
    key_mask_ = at::cat({past, step}, 1);
    return key_mask_;
  }

 private:
  KvCache cache_;
  int64_t batch_;
  at::Tensor key_mask_;  // [B, length()] bool, undefined = all real
};

}  // namespace triad
