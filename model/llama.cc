// Llama (1/2/3): RMSNorm pre-norm blocks, rotate-half RoPE (with linear / llama3 frequency
// scaling), grouped-query attention and a SwiGLU MLP.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "model/architectures.h"
#include "model/causal_state.h"
#include "model/status_macros.h"

namespace triad {
namespace {

struct LlamaLayer {
  at::Tensor input_norm, post_norm;
  Linear qkv, o, gate_up, down;  // q|k|v and gate|up fused at load
};

// HF's inverse frequencies in fp32, scaled as rope_scaling says.
at::Tensor InverseFrequencies(const ModelConfig& c) {
  const int64_t d = c.head_dim;
  at::Tensor exponents = at::arange(0, d, 2, at::kLong).to(at::kFloat) / d;
  at::Tensor inv = at::reciprocal(at::pow(c.rope_theta, exponents));
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScaling::Type::kLinear) return inv / s.factor;
  if (s.type != RopeScaling::Type::kLlama3) return inv;
  const double orig = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = orig / s.low_freq_factor;
  const double high_wavelen = orig / s.high_freq_factor;
  const at::Tensor wavelen = 2 * M_PI / inv;
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv / s.factor, inv);
  const at::Tensor smooth =
      (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  const at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  const at::Tensor medium = wavelen.ge(high_wavelen) & wavelen.le(low_wavelen);
  return at::where(medium, smoothed, scaled);
}

class LlamaModel : public CausalModel {
 public:
  LlamaModel(const ModelConfig& config, const Placement& placement)
      : CausalModel(config, placement) {}

  absl::Status Load(WeightLoader& w) {
    const ModelConfig& c = config();
    const int64_t d = c.hidden_size, qd = c.num_heads * c.head_dim;
    const int64_t kvd = c.num_kv_heads * c.head_dim, ff = c.intermediate_size;
    TRIAD_ASSIGN_OR_RETURN(embed_, w.Get("model.embed_tokens.weight", {c.vocab_size, d}));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = absl::StrCat("model.layers.", i, ".");
      LlamaLayer l;
      TRIAD_ASSIGN_OR_RETURN(l.input_norm, w.Get(p + "input_layernorm.weight", {d}));
      TRIAD_ASSIGN_OR_RETURN(l.post_norm, w.Get(p + "post_attention_layernorm.weight", {d}));
      TRIAD_ASSIGN_OR_RETURN(Linear q, w.GetLinear(p + "self_attn.q_proj", d, qd, c.attention_bias));
      TRIAD_ASSIGN_OR_RETURN(Linear k, w.GetLinear(p + "self_attn.k_proj", d, kvd, c.attention_bias));
      TRIAD_ASSIGN_OR_RETURN(Linear v, w.GetLinear(p + "self_attn.v_proj", d, kvd, c.attention_bias));
      l.qkv = ConcatLinears({q, k, v});
      TRIAD_ASSIGN_OR_RETURN(l.o, w.GetLinear(p + "self_attn.o_proj", qd, d, c.attention_bias));
      TRIAD_ASSIGN_OR_RETURN(Linear gate, w.GetLinear(p + "mlp.gate_proj", d, ff, c.mlp_bias));
      TRIAD_ASSIGN_OR_RETURN(Linear up, w.GetLinear(p + "mlp.up_proj", d, ff, c.mlp_bias));
      l.gate_up = ConcatLinears({gate, up});
      TRIAD_ASSIGN_OR_RETURN(l.down, w.GetLinear(p + "mlp.down_proj", ff, d, c.mlp_bias));
      layers_.push_back(std::move(l));
    }
    TRIAD_ASSIGN_OR_RETURN(norm_, w.Get("model.norm.weight", {d}));
    if (c.tie_word_embeddings) {
      lm_head_.weight = embed_;
    } else {
      TRIAD_ASSIGN_OR_RETURN(lm_head_, w.GetLinear("lm_head", d, c.vocab_size, false));
    }
    inv_freq_ = InverseFrequencies(c).to(placement().device);
    qkv_sizes_ = {qd, kvd, kvd};
    set_weight_bytes(w.bytes_loaded());
    return absl::OkStatus();
  }

 protected:
  at::Tensor Hidden(const at::Tensor& ids, const at::Tensor& positions,
                    AttentionContext& ctx) const override {
    const ModelConfig& c = config();
    // cos/sin [B, 1, T, head_dim] from fp32 angles, as HF computes them.
    const at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_.view({1, 1, -1});
    const at::Tensor angles = at::cat({freqs, freqs}, -1).unsqueeze(1);
    const at::Tensor cos = angles.cos().to(placement().dtype);
    const at::Tensor sin = angles.sin().to(placement().dtype);
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));

    at::Tensor h = at::embedding(embed_, ids);
    for (size_t i = 0; i < layers_.size(); ++i) {
      const LlamaLayer& l = layers_[i];
      const at::Tensor x = RmsNorm(h, l.input_norm, c.norm_eps);
      const std::vector<at::Tensor> qkv = l.qkv(x).split_with_sizes(qkv_sizes_, -1);
      at::Tensor q = SplitHeads(qkv[0], c.num_heads);
      at::Tensor k = SplitHeads(qkv[1], c.num_kv_heads);
      const at::Tensor v = SplitHeads(qkv[2], c.num_kv_heads);
      q = ApplyRotary(q, cos, sin);
      k = ApplyRotary(k, cos, sin);
      h = h + l.o(MergeHeads(ctx.SelfAttend(static_cast<int64_t>(i), q, k, v, scale)));
      const at::Tensor y = RmsNorm(h, l.post_norm, c.norm_eps);
      const std::vector<at::Tensor> gate_up = l.gate_up(y).chunk(2, -1);
      h = h + l.down(at::silu(gate_up[0]) * gate_up[1]);
    }
    return RmsNorm(h, norm_, c.norm_eps);
  }

  at::Tensor LmHead(const at::Tensor& hidden) const override { return lm_head_(hidden); }

 private:
  at::Tensor embed_;
  std::vector<LlamaLayer> layers_;
  at::Tensor norm_;
  Linear lm_head_;
  at::Tensor inv_freq_;  // [head_dim / 2] fp32
  std::vector<int64_t> qkv_sizes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadLlama(const ModelConfig& config, WeightLoader& weights,
                                                 const Placement& placement) {
  auto model = std::make_unique<LlamaModel>(config, placement);
  TRIAD_RETURN_IF_ERROR(model->Load(weights));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace triad
