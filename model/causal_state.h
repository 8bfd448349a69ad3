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

// What a decoder-only forward needs for one step, derived once from the inputs and the state:
// ids on the device, positions (given, or continuing from the cache) and the additive mask.
struct CausalStep {
  at::Tensor ids;        // [B, T] on the model's device
  at::Tensor positions;  // [B, T]
  at::Tensor mask;       // [B, 1, T, past + T] additive, or undefined when nothing is masked
  int64_t past = 0;      // tokens already cached
};

inline CausalStep PrepareCausalStep(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                    const at::Tensor& position_ids, CausalState& state,
                                    const Placement& placement) {
  CausalStep step;
  step.ids = input_ids.to(placement.device);
  const int64_t batch = step.ids.size(0), steps = step.ids.size(1);
  step.past = state.length();
  step.positions = position_ids.defined()
                       ? position_ids.to(placement.device)
                       : at::arange(step.past, step.past + steps, step.ids.options())
                             .expand({batch, steps});
  const at::Tensor key_mask = state.ExtendKeyMask(attention_mask, steps, placement.device);
  step.mask = BuildAttentionMask(key_mask, batch, step.past, steps, /*causal=*/true,
                                 placement.dtype, placement.device);
  return step;
}

// Base of the decoder-only architectures: their decoding state is a CausalState.
class CausalModel : public Model {
 protected:
  using Model::Model;
  std::unique_ptr<DecoderState> NewStateImpl(int64_t batch_size,
                                             const EncoderInput*) const override {
    return std::make_unique<CausalState>(config().num_layers, batch_size);
  }
};

}  // namespace triad
