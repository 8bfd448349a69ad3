#include "model/causal_state.h"

namespace triad {

at::Tensor CausalState::ExtendKeyMask(const at::Tensor& step_mask, int64_t num_new,
                                      const at::Device& device) {
  if (!step_mask.defined() && !key_mask_.defined()) return at::Tensor();
  const auto opts = at::TensorOptions().dtype(at::kBool).device(device);
  const at::Tensor step =
      step_mask.defined() ? step_mask.to(device).ne(0) : at::ones({batch_, num_new}, opts);
  const at::Tensor past = key_mask_.defined() ? key_mask_ : at::ones({batch_, length()}, opts);
  key_mask_ = at::cat({past, step}, 1);
  return key_mask_;
}

CausalStep PrepareCausalStep(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                             const at::Tensor& position_ids, CausalState& state,
                             const Placement& placement) {
  CausalStep step;
  step.ids = input_ids.to(placement.device);
  const int64_t batch = step.ids.size(0), steps = step.ids.size(1), past = state.length();
  step.positions = position_ids.defined()
                       ? position_ids.to(placement.device)
                       : at::arange(past, past + steps, step.ids.options()).expand({batch, steps});
  const at::Tensor key_mask = state.ExtendKeyMask(attention_mask, steps, placement.device);
  step.mask = BuildAttentionMask(key_mask, batch, past, steps, /*causal=*/true, placement.dtype,
                                 placement.device);
  return step;
}

at::Tensor CausalModel::ForwardImpl(const StepInput& in, DecoderState& base) const {
  auto& state = static_cast<CausalState&>(base);
  const CausalStep step =
      PrepareCausalStep(in.input_ids, in.attention_mask, in.position_ids, state, placement());
  BatchAttention ctx(state.cache(), step.mask);
  at::Tensor h = Hidden(step.ids, step.positions, ctx);
  state.cache().Advance(step.ids.size(1));
  if (in.last_logits_only) h = h.narrow(1, h.size(1) - 1, 1);
  return LmHead(h).to(at::kFloat);
}

at::Tensor CausalModel::ForwardChunksImpl(const std::vector<SequenceChunk>& chunks) const {
  return LmHead(ChunkHidden(chunks)).to(at::kFloat);
}

at::Tensor CausalModel::StaticDecode(const StaticDecodeInputs& in, const KvPool& pool) const {
  StaticDecodeAttention ctx(pool, in);
  return LmHead(Hidden(in.ids, in.positions, ctx)[0]).to(at::kFloat);
}

int64_t CausalModel::StaticDecodePositions() const {
  return config().max_positions > 0 ? config().max_positions : kUnlimitedStaticPositions;
}

at::Tensor CausalModel::HeadChunksImpl(const std::vector<SequenceChunk>& chunks) const {
  return HeadOnHidden(ChunkHidden(chunks));
}

at::Tensor CausalModel::ChunkHidden(const std::vector<SequenceChunk>& chunks) const {
  const Placement& p = placement();
  // Positions gathered on the host and sent once, as the ids (ConcatChunkIds).
  std::vector<int64_t> positions;
  std::vector<RaggedSequence> sequences;
  std::vector<int64_t> last;
  int64_t offset = 0;
  for (const SequenceChunk& chunk : chunks) {
    auto* seq = static_cast<CausalSequence*>(chunk.state);
    const int64_t steps = chunk.input_ids.size(0), past = seq->length();
    for (int64_t t = 0; t < steps; ++t) positions.push_back(past + t);
    sequences.push_back({&seq->kv, steps});
    for (int64_t t = chunk.all_logits ? 0 : steps - 1; t < steps; ++t) last.push_back(offset + t);
    offset += steps;
  }
  RaggedAttention ctx(
      std::move(sequences),
      [&](int64_t past, int64_t steps) {
        return BuildAttentionMask(at::Tensor(), 1, past, steps, /*causal=*/true, p.dtype, p.device);
      },
      /*causal_only=*/true);
  const at::Tensor h = Hidden(ConcatChunkIds(chunks, p.device),
                              at::tensor(positions, at::kLong).to(p.device).unsqueeze(0), ctx);
  for (const SequenceChunk& chunk : chunks) {
    static_cast<CausalSequence*>(chunk.state)->kv.Advance(chunk.input_ids.size(0));
  }
  return h[0].index_select(0, at::tensor(last, at::kLong).to(p.device));
}

at::Tensor CausalModel::HiddenOnce(const at::Tensor& input_ids,
                                   const at::Tensor& attention_mask) const {
  CausalState state(config().num_layers, input_ids.size(0));
  const CausalStep step =
      PrepareCausalStep(input_ids, attention_mask, at::Tensor(), state, placement());
  BatchAttention ctx(state.cache(), step.mask);
  return Hidden(step.ids, step.positions, ctx);
}

}  // namespace triad
