// T5 (v1.0 ReLU / v1.1 gated-GELU): RMSNorm pre-norm encoder and decoder, unscaled attention
// with bucketed relative position bias, cross-attention keys/values computed once per batch.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "model/architectures.h"
#include "model/attention_context.h"
#include "model/status_macros.h"

namespace triad {
namespace {

struct T5Attention {
  Linear q, k, v, o;
};

struct T5FeedForward {
  Linear wi, wi_1, wo;  // wi is wi_0 when gated
};

struct T5Layer {
  at::Tensor self_norm, cross_norm, ff_norm;  // cross_norm only in the decoder
  T5Attention self_attn, cross_attn;
  T5FeedForward ff;
};

// Decoder state: the self-attention cache plus the encoder's projected keys/values per layer.
class T5State : public DecoderState {
 public:
  T5State(int64_t num_layers, int64_t batch) : cache_(num_layers), batch_(batch) {}
  int64_t batch_size() const override { return batch_; }
  int64_t length() const override { return cache_.length(); }
  void SelectRows(const at::Tensor& index) override {
    cache_.SelectRows(index);
    const at::Tensor idx = index.to(encoder_mask.defined() ? encoder_mask.device()
                                                           : cross_keys.at(0).device());
    for (auto& t : cross_keys) t = t.index_select(0, idx);
    for (auto& t : cross_values) t = t.index_select(0, idx);
    if (encoder_mask.defined()) encoder_mask = encoder_mask.index_select(0, idx);
    batch_ = index.size(0);
  }
  KvCache& cache() { return cache_; }

  std::vector<at::Tensor> cross_keys, cross_values;  // [B, H, S, d_kv] per layer
  at::Tensor encoder_mask;                           // additive [B, 1, 1, S] or undefined

 private:
  KvCache cache_;
  int64_t batch_;
};

// A continuous-batching sequence: its self-attention cache and its encoder keys/values.
class T5Sequence : public SequenceState {
 public:
  explicit T5Sequence(KvPool& pool) : self(pool), cross(pool) {}
  int64_t length() const override { return self.length(); }
  int64_t blocks_held() const override {
    return static_cast<int64_t>(self.blocks().size() + cross.blocks().size());
  }
  bool Reserve(int64_t num_tokens) override { return self.Reserve(self.length() + num_tokens); }
  std::unique_ptr<SequenceState> Fork() const override {
    auto copy = std::make_unique<T5Sequence>(self.pool());
    copy->self.ForkFrom(self, /*copy_partial=*/true);
    copy->cross.ForkFrom(cross, /*copy_partial=*/false);  // written once, read by every beam
    return copy;
  }
  // Stores row b's first lengths[b] encoder positions of the projected keys/values ([B, H, S,
  // d_kv] per layer) as sequences[b]'s cross-attention K/V: one indexed copy per layer for all
  // of them (per-block copies cost ~30 ATen calls per sequence and layer, host work a GPU
  // admission waits on). Throws KvPoolExhausted; blocks already taken stay with their sequence.
  static void SetCross(const std::vector<T5Sequence*>& sequences,
                       const std::vector<int64_t>& lengths, const std::vector<at::Tensor>& keys,
                       const std::vector<at::Tensor>& values) {
    std::vector<int64_t> slots, rows;
    const int64_t positions = keys[0].size(2);
    for (size_t b = 0; b < sequences.size(); ++b) {
      sequences[b]->cross.AppendSlots(lengths[b], slots);
      for (int64_t p = 0; p < lengths[b]; ++p) rows.push_back(static_cast<int64_t>(b) * positions + p);
    }
    const KvPool& pool = sequences[0]->cross.pool();
    const at::Device device = keys[0].device();
    const at::Tensor slot_index = at::tensor(slots, at::kLong).to(device);
    const at::Tensor row_index = at::tensor(rows, at::kLong).to(device);
    auto flat = [&](const at::Tensor& x) {  // [B, H, S, d] -> the rows' [H, n, d]
      return ToType(x.transpose(0, 1).reshape({x.size(1), -1, x.size(3)}).index_select(1, row_index),
                    pool.keys(0).scalar_type());
    };
    for (size_t l = 0; l < keys.size(); ++l) {
      pool.WriteSlots(static_cast<int64_t>(l), slot_index, flat(keys[l]), flat(values[l]));
    }
    for (size_t b = 0; b < sequences.size(); ++b) sequences[b]->cross.Advance(lengths[b]);
  }
  PagedKv* self_kv() override { return &self; }
  PagedKv* cross_kv() override { return &cross; }
  PagedKv self;   // decoder self-attention
  PagedKv cross;  // the encoder's projected keys/values, written once
};

class T5Model : public Model {
 public:
  T5Model(const ModelConfig& config, const Placement& placement) : Model(config, placement) {}

  absl::Status Load(WeightLoader& w) {
    const ModelConfig& c = config();
    TRIAD_ASSIGN_OR_RETURN(shared_, w.Get("shared.weight", {c.vocab_size, c.hidden_size}));
    TRIAD_RETURN_IF_ERROR(LoadStack(w, "encoder", c.num_layers, false, encoder_));
    TRIAD_RETURN_IF_ERROR(LoadStack(w, "decoder", c.num_decoder_layers, true, decoder_));
    const std::vector<int64_t> bias_shape = {c.relative_attention_num_buckets, c.num_heads};
    const std::string bias_name = "block.0.layer.0.SelfAttention.relative_attention_bias.weight";
    TRIAD_ASSIGN_OR_RETURN(encoder_bias_, w.Get("encoder." + bias_name, bias_shape));
    TRIAD_ASSIGN_OR_RETURN(decoder_bias_, w.Get("decoder." + bias_name, bias_shape));
    // The decoder's bias of one query at position S - 1 over keys 0..S - 1 (S =
    // kT5DecodeBiasSpan): key j lies at distance S - 1 - j, and a decode query at position p < S
    // reads its row as the last p + 1 columns. Same buckets, same table entries as
    // PositionBias computes per query, in one view instead of ~25 ATen calls per sequence and
    // step (host work that grows with the batch).
    decoder_bias_rows_ = PositionBias(decoder_bias_, kT5DecodeBiasSpan - 1, 1, kT5DecodeBiasSpan,
                                      false)
                             .contiguous();
    TRIAD_ASSIGN_OR_RETURN(encoder_norm_, w.Get("encoder.final_layer_norm.weight", {c.hidden_size}));
    TRIAD_ASSIGN_OR_RETURN(decoder_norm_, w.Get("decoder.final_layer_norm.weight", {c.hidden_size}));
    if (c.tie_word_embeddings) {
      lm_head_.weight = shared_;
    } else {
      TRIAD_ASSIGN_OR_RETURN(lm_head_, w.GetLinear("lm_head", c.hidden_size, c.vocab_size, false));
    }
    set_weight_bytes(w.bytes_loaded());
    return absl::OkStatus();
  }

 protected:
  at::Tensor EncodeImpl(const EncoderInput& in) const override {
    const ModelConfig& c = config();
    const at::Device device = placement().device;
    const at::Tensor ids = in.input_ids.to(device);
    const int64_t batch = ids.size(0), len = ids.size(1);
    at::Tensor bias = PositionBias(encoder_bias_, 0, len, len, /*bidirectional=*/true);
    const at::Tensor mask = BuildAttentionMask(in.attention_mask, batch, 0, len, false,
                                               placement().dtype, device);
    if (mask.defined()) bias = bias + mask;
    at::Tensor h = at::embedding(shared_, ids);
    for (const T5Layer& l : encoder_) {
      const at::Tensor x = RmsNorm(h, l.self_norm, c.norm_eps);
      h = h + EncoderAttend(l.self_attn, x, bias);
      h = h + FeedForward(l.ff, RmsNorm(h, l.ff_norm, c.norm_eps));
    }
    return RmsNorm(h, encoder_norm_, c.norm_eps);
  }

  std::unique_ptr<DecoderState> NewStateImpl(int64_t batch_size,
                                             const EncoderInput* encoder) const override {
    if (encoder == nullptr) throw Unsupported{"T5 needs an encoder input to start decoding"};
    const at::Tensor hidden = EncodeImpl(*encoder);
    auto state = std::make_unique<T5State>(config().num_decoder_layers, hidden.size(0));
    ProjectEncoder(hidden, state->cross_keys, state->cross_values);
    state->encoder_mask = BuildAttentionMask(encoder->attention_mask, hidden.size(0), 0, 1, false,
                                             placement().dtype, placement().device);
    return state;
  }

  at::Tensor ForwardImpl(const StepInput& in, DecoderState& base) const override {
    auto& state = static_cast<T5State&>(base);
    const at::Tensor ids = in.input_ids.to(placement().device);
    BatchAttention ctx(state.cache(), SelfBias(state.length(), ids.size(1)));
    ctx.SetCross(&state.cross_keys, &state.cross_values, state.encoder_mask);
    at::Tensor h = DecoderHidden(ids, ctx);
    state.cache().Advance(ids.size(1));
    if (in.last_logits_only) h = h.narrow(1, h.size(1) - 1, 1);
    return LmHead(h);
  }

  std::unique_ptr<SequenceState> NewSequenceImpl(KvPool& pool,
                                                 const at::Tensor* encoder_ids) const override {
    const at::Tensor hidden = EncodeImpl(EncoderInput{encoder_ids->view({1, -1}), at::Tensor()});
    std::vector<at::Tensor> keys, values;  // [1, H, S, d_kv] per layer
    ProjectEncoder(hidden, keys, values);
    auto seq = std::make_unique<T5Sequence>(pool);
    T5Sequence::SetCross({seq.get()}, {hidden.size(1)}, keys, values);
    return seq;
  }

  std::vector<std::unique_ptr<SequenceState>> NewSequencesImpl(
      KvPool& pool, const std::vector<const at::Tensor*>& encoder_ids) const override {
    if (encoder_ids.size() <= 1) return Model::NewSequencesImpl(pool, encoder_ids);
    std::vector<std::unique_ptr<SequenceState>> out;
    // One right-padded encoder pass (padding masked), then each sequence's own positions.
    int64_t longest = 0;
    for (const at::Tensor* ids : encoder_ids) longest = std::max(longest, ids->numel());
    const int64_t batch = static_cast<int64_t>(encoder_ids.size());
    at::Tensor ids = at::zeros({batch, longest}, at::kLong);
    at::Tensor mask = at::zeros({batch, longest}, at::kLong);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t len = encoder_ids[static_cast<size_t>(b)]->numel();
      ids[b].narrow(0, 0, len).copy_(encoder_ids[static_cast<size_t>(b)]->reshape({-1}));
      mask[b].narrow(0, 0, len).fill_(1);
    }
    const at::Tensor hidden = EncodeImpl(EncoderInput{ids, mask});
    std::vector<at::Tensor> keys, values;  // [B, H, S, d_kv] per layer
    ProjectEncoder(hidden, keys, values);
    std::vector<T5Sequence*> sequences;
    std::vector<int64_t> lengths;
    for (int64_t b = 0; b < batch; ++b) {
      out.push_back(std::make_unique<T5Sequence>(pool));
      sequences.push_back(static_cast<T5Sequence*>(out.back().get()));
      lengths.push_back(encoder_ids[static_cast<size_t>(b)]->numel());
    }
    T5Sequence::SetCross(sequences, lengths, keys, values);
    return out;
  }

  at::Tensor ForwardChunksImpl(const std::vector<SequenceChunk>& chunks) const override {
    std::vector<RaggedSequence> sequences;
    std::vector<int64_t> last;
    int64_t offset = 0;
    for (const SequenceChunk& chunk : chunks) {
      auto* seq = static_cast<T5Sequence*>(chunk.state);
      const int64_t steps = chunk.input_ids.size(0);
      sequences.push_back({&seq->self, steps, &seq->cross});
      for (int64_t t = chunk.all_logits ? 0 : steps - 1; t < steps; ++t) last.push_back(offset + t);
      offset += steps;
    }
    RaggedAttention ctx(std::move(sequences),
                        [&](int64_t past, int64_t steps) { return SelfBias(past, steps); });
    const at::Device device = placement().device;
    const at::Tensor h = DecoderHidden(ConcatChunkIds(chunks, device), ctx);
    for (const SequenceChunk& chunk : chunks) {
      static_cast<T5Sequence*>(chunk.state)->self.Advance(chunk.input_ids.size(0));
    }
    return LmHead(h[0].index_select(0, at::tensor(last, at::kLong).to(device)));
  }

  bool HasStaticDecode() const override { return true; }
  // Decode queries read their relative-position bias from the precomputed row, which covers
  // positions below kT5DecodeBiasSpan; encoder inputs up to as many positions.
  int64_t StaticDecodePositions() const override { return kT5DecodeBiasSpan; }
  int64_t StaticDecodeCrossPositions() const override { return kT5DecodeBiasSpan; }
  at::Tensor StaticDecode(const StaticDecodeInputs& in, const KvPool& pool) const override {
    // Row r at position p reads key k's bias from column S - 1 - p + k of the precomputed row
    // (S = kT5DecodeBiasSpan; SelfBias takes the same columns as a view); keys past p are
    // masked, so their clamped columns do not matter.
    const int64_t keys = in.blocks * pool.block_size(), heads = decoder_bias_rows_.size(1);
    const at::Tensor column =
        (at::arange(keys, in.positions.options()).unsqueeze(0) -
         in.positions.view({in.rows, 1}) + (kT5DecodeBiasSpan - 1))
            .clamp(0, kT5DecodeBiasSpan - 1);
    const at::Tensor bias = decoder_bias_rows_.view({heads, kT5DecodeBiasSpan})
                                .index_select(1, column.reshape({-1}))
                                .view({heads, in.rows, 1, keys})
                                .transpose(0, 1);
    StaticDecodeAttention ctx(pool, in, bias);
    return LmHead(DecoderHidden(in.ids, ctx)[0]);
  }

 private:
  // Decoder self-attention bias for queries past..past+steps-1: relative positions + causal.
  at::Tensor SelfBias(int64_t past, int64_t steps) const {
    if (steps == 1 && past < kT5DecodeBiasSpan) {  // one query: no causal mask, distances past..0
      return decoder_bias_rows_.narrow(3, kT5DecodeBiasSpan - 1 - past, past + 1);
    }
    at::Tensor bias = PositionBias(decoder_bias_, past, steps, past + steps, false);
    const at::Tensor causal = BuildAttentionMask(at::Tensor(), 1, past, steps, true,
                                                 placement().dtype, placement().device);
    return causal.defined() ? bias + causal : bias;
  }

  // The decoder stack over `ids` [B, T]; returns the final-norm hidden states.
  at::Tensor DecoderHidden(const at::Tensor& ids, AttentionContext& ctx) const {
    const ModelConfig& c = config();
    at::Tensor h = at::embedding(shared_, ids);
    for (size_t i = 0; i < decoder_.size(); ++i) {
      const T5Layer& l = decoder_[i];
      const int64_t layer = static_cast<int64_t>(i);
      const at::Tensor x = RmsNorm(h, l.self_norm, c.norm_eps);
      const at::Tensor a = ctx.SelfAttend(layer, SplitHeads(l.self_attn.q(x), c.num_heads),
                                          SplitHeads(l.self_attn.k(x), c.num_heads),
                                          SplitHeads(l.self_attn.v(x), c.num_heads), 1.0);
      h = h + l.self_attn.o(MergeHeads(a));
      const at::Tensor y = RmsNorm(h, l.cross_norm, c.norm_eps);
      const at::Tensor q = SplitHeads(l.cross_attn.q(y), c.num_heads);
      h = h + l.cross_attn.o(MergeHeads(ctx.CrossAttend(layer, q, 1.0)));
      h = h + FeedForward(l.ff, RmsNorm(h, l.ff_norm, c.norm_eps));
    }
    return RmsNorm(h, decoder_norm_, c.norm_eps);
  }

  // float32 logits; tied embeddings rescale by d_model^-0.5 first (HF T5 v1.0).
  at::Tensor LmHead(at::Tensor h) const {
    if (config().tie_word_embeddings) {
      h = h * std::pow(static_cast<double>(config().hidden_size), -0.5);
    }
    return lm_head_(h).to(at::kFloat);
  }

  // Cross-attention keys/values of every decoder layer for encoder states [B, S, D].
  void ProjectEncoder(const at::Tensor& hidden, std::vector<at::Tensor>& keys,
                      std::vector<at::Tensor>& values) const {
    for (const T5Layer& l : decoder_) {
      keys.push_back(SplitHeads(l.cross_attn.k(hidden), config().num_heads));
      values.push_back(SplitHeads(l.cross_attn.v(hidden), config().num_heads));
    }
  }

  absl::Status LoadStack(WeightLoader& w, const std::string& stack, int64_t num_layers,
                         bool decoder, std::vector<T5Layer>& out) {
    const ModelConfig& c = config();
    const int64_t d = c.hidden_size, inner = c.attention_width(), ff = c.intermediate_size;
    for (int64_t i = 0; i < num_layers; ++i) {
      const std::string p = absl::StrCat(stack, ".block.", i, ".layer.");
      T5Layer l;
      auto attention = [&](const std::string& a, T5Attention& out_attn) -> absl::Status {
        TRIAD_ASSIGN_OR_RETURN(out_attn.q, w.GetLinear(a + ".q", d, inner, false));
        TRIAD_ASSIGN_OR_RETURN(out_attn.k, w.GetLinear(a + ".k", d, inner, false));
        TRIAD_ASSIGN_OR_RETURN(out_attn.v, w.GetLinear(a + ".v", d, inner, false));
        TRIAD_ASSIGN_OR_RETURN(out_attn.o, w.GetLinear(a + ".o", inner, d, false));
        return absl::OkStatus();
      };
      TRIAD_ASSIGN_OR_RETURN(l.self_norm, w.Get(p + "0.layer_norm.weight", {d}));
      TRIAD_RETURN_IF_ERROR(attention(p + "0.SelfAttention", l.self_attn));
      const std::string ff_layer = p + (decoder ? "2." : "1.");
      if (decoder) {
        TRIAD_ASSIGN_OR_RETURN(l.cross_norm, w.Get(p + "1.layer_norm.weight", {d}));
        TRIAD_RETURN_IF_ERROR(attention(p + "1.EncDecAttention", l.cross_attn));
      }
      TRIAD_ASSIGN_OR_RETURN(l.ff_norm, w.Get(ff_layer + "layer_norm.weight", {d}));
      const std::string dense = ff_layer + "DenseReluDense.";
      if (c.gated_ff) {
        TRIAD_ASSIGN_OR_RETURN(l.ff.wi, w.GetLinear(dense + "wi_0", d, ff, false));
        TRIAD_ASSIGN_OR_RETURN(l.ff.wi_1, w.GetLinear(dense + "wi_1", d, ff, false));
      } else {
        TRIAD_ASSIGN_OR_RETURN(l.ff.wi, w.GetLinear(dense + "wi", d, ff, false));
      }
      // HF keeps T5's `wo` in fp32 under float16 (_keep_in_fp32_modules, against overflow);
      // its output then promotes the residual stream to fp32. bfloat16 keeps it in bf16.
      const auto wo_dtype = placement().dtype == at::kHalf ? std::optional(at::kFloat)
                                                           : std::nullopt;
      TRIAD_ASSIGN_OR_RETURN(l.ff.wo, w.GetLinear(dense + "wo", ff, d, false, wo_dtype));
      out.push_back(std::move(l));
    }
    return absl::OkStatus();
  }

  // Relative position bias [1, H, Tq, Tk] for queries past..past+Tq-1 over keys 0..Tk-1.
  at::Tensor PositionBias(const at::Tensor& table, int64_t past, int64_t num_queries,
                          int64_t num_keys, bool bidirectional) const {
    const auto opts = at::TensorOptions().dtype(at::kLong).device(placement().device);
    const at::Tensor query = at::arange(past, past + num_queries, opts).view({-1, 1});
    const at::Tensor key = at::arange(num_keys, opts).view({1, -1});
    const at::Tensor buckets = T5RelativePositionBucket(
        key - query, bidirectional, config().relative_attention_num_buckets,
        config().relative_attention_max_distance);
    return at::embedding(table, buckets).permute({2, 0, 1}).unsqueeze(0);
  }

  // Encoder self-attention (no cache), projected by `attn`.
  at::Tensor EncoderAttend(const T5Attention& attn, const at::Tensor& x,
                           const at::Tensor& bias) const {
    const int64_t heads = config().num_heads;
    return attn.o(MergeHeads(Attention(SplitHeads(attn.q(x), heads), SplitHeads(attn.k(x), heads),
                                       SplitHeads(attn.v(x), heads), bias, 1.0)));
  }

  at::Tensor FeedForward(const T5FeedForward& ff, const at::Tensor& x) const {
    at::Tensor h = Activation(config().activation, ff.wi(x));
    if (ff.wi_1.weight.defined()) h = h * ff.wi_1(x);
    return ff.wo(h.to(ff.wo.weight.scalar_type()));
  }

  at::Tensor shared_;
  std::vector<T5Layer> encoder_, decoder_;
  at::Tensor encoder_bias_, decoder_bias_, encoder_norm_, decoder_norm_;
  // [1, H, 1, S = kT5DecodeBiasSpan]: column S - 1 - d holds the bias at distance d.
  at::Tensor decoder_bias_rows_;
  Linear lm_head_;
};

}  // namespace

at::Tensor T5RelativePositionBucket(const at::Tensor& relative_position, bool bidirectional,
                                    int64_t num_buckets, int64_t max_distance) {
  at::Tensor buckets = at::zeros_like(relative_position);
  at::Tensor rel = relative_position;
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + rel.gt(0).to(at::kLong) * num_buckets;
    rel = rel.abs();
  } else {
    rel = -at::minimum(rel, at::zeros_like(rel));
  }
  const int64_t max_exact = num_buckets / 2;
  // Same fp32 ops in the same order as HF, so the truncation lands on the same integers.
  at::Tensor large = max_exact + (at::log(rel.to(at::kFloat) / max_exact) /
                                  std::log(static_cast<double>(max_distance) / max_exact) *
                                  (num_buckets - max_exact))
                                     .to(at::kLong);
  large = at::minimum(large, at::full_like(large, num_buckets - 1));
  return buckets + at::where(rel.lt(max_exact), rel, large);
}

absl::StatusOr<std::unique_ptr<Model>> LoadT5(const ModelConfig& config, WeightLoader& weights,
                                              const Placement& placement) {
  auto model = std::make_unique<T5Model>(config, placement);
  TRIAD_RETURN_IF_ERROR(model->Load(weights));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace triad
