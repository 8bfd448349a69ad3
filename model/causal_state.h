// The decoder-only side of the model interface, shared by GPT-1 and Llama: the batch decoding
// state (CausalState), a continuous-batching sequence (CausalSequence), and CausalModel, which
// runs an architecture's layer stack (Hidden) over either. Thread contract as in model.h.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "model/attention_context.h"
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
  at::Tensor ExtendKeyMask(const at::Tensor& step_mask, int64_t num_new, const at::Device& device);

 private:
  KvCache cache_;
  int64_t batch_;
  at::Tensor key_mask_;  // [B, length()] bool, undefined = all real
};

class CausalSequence : public SequenceState {
 public:
  explicit CausalSequence(KvPool& pool) : kv(pool) {}
  int64_t length() const override { return kv.length(); }
  int64_t blocks_held() const override { return static_cast<int64_t>(kv.blocks().size()); }
  bool Reserve(int64_t num_tokens) override { return kv.Reserve(kv.length() + num_tokens); }
  int64_t AdoptCachedPrefix(const std::vector<int64_t>& tokens, int64_t max_blocks) override {
    return kv.AdoptPrefix(tokens, max_blocks);
  }
  void CachePrefix(const std::vector<int64_t>& tokens) override { kv.RegisterFullBlocks(tokens); }
  std::unique_ptr<SequenceState> Fork() const override {
    auto copy = std::make_unique<CausalSequence>(kv.pool());
    copy->kv.ForkFrom(kv, /*copy_partial=*/true);
    return copy;
  }
  PagedKv* self_kv() override { return &kv; }
  PagedKv kv;
};

// What a decoder-only forward needs for one batch step, derived once from the inputs and the
// state: ids on the device, positions (given, or continuing from the cache) and the mask.
struct CausalStep {
  at::Tensor ids;        // [B, T] on the model's device
  at::Tensor positions;  // [B, T]
  at::Tensor mask;       // [B, 1, T, past + T] additive, or undefined when nothing is masked
};

CausalStep PrepareCausalStep(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                             const at::Tensor& position_ids, CausalState& state,
                             const Placement& placement);

class CausalModel : public Model {
 public:
  bool HasStaticDecode() const override { return true; }
  at::Tensor StaticDecode(const StaticDecodeInputs& in, const KvPool& pool) const override;
  // The model's context, or kUnlimitedStaticPositions when it has no limit.
  int64_t StaticDecodePositions() const override;

 protected:
  using Model::Model;

  // Final hidden states [B, T, D] of `ids` at `positions`, attention through `ctx`.
  virtual at::Tensor Hidden(const at::Tensor& ids, const at::Tensor& positions,
                            AttentionContext& ctx) const = 0;
  // Logits in the serving dtype from hidden states [..., D].
  virtual at::Tensor LmHead(const at::Tensor& hidden) const = 0;

  std::unique_ptr<DecoderState> NewStateImpl(int64_t batch_size,
                                             const EncoderInput*) const override {
    return std::make_unique<CausalState>(config().num_layers, batch_size);
  }
  at::Tensor ForwardImpl(const StepInput& in, DecoderState& state) const override;
  std::unique_ptr<SequenceState> NewSequenceImpl(KvPool& pool, const at::Tensor*) const override {
    return std::make_unique<CausalSequence>(pool);
  }
  at::Tensor ForwardChunksImpl(const std::vector<SequenceChunk>& chunks) const override;
  at::Tensor HeadChunksImpl(const std::vector<SequenceChunk>& chunks) const override;
  // The classification head over final hidden states [N, D]: float32 [N, head_outputs()].
  // Default: Unsupported (no head).
  virtual at::Tensor HeadOnHidden(const at::Tensor& hidden) const {
    (void)hidden;
    throw Unsupported{"the checkpoint has no classification head"};
  }
  // Runs the chunks through the layer stack (appending to their caches) and returns the final
  // hidden states [rows, D] of the rows ForwardChunks documents.
  at::Tensor ChunkHidden(const std::vector<SequenceChunk>& chunks) const;

  // Hidden states of a whole batch run from an empty cache (classification heads).
  at::Tensor HiddenOnce(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;
};

}  // namespace triad
