// OpenAI GPT (GPT-1): learned positions, post-LayerNorm blocks, tied LM head, and the two
// fine-tuning heads (sequence classification, double heads / multiple choice).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "model/architectures.h"
#include "model/causal_state.h"
#include "model/status_macros.h"

namespace triad {
namespace {

struct Gpt1Block {
  Linear c_attn, c_proj, c_fc, mlp_proj;
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
};

// Row n of `h` [N, T, D] at position index[n] (int64 [N], any device): [N, D], what a head
// reads.
at::Tensor AtPositions(const at::Tensor& h, const at::Tensor& index) {
  const at::Tensor at = index.to(h.device(), at::kLong);
  return h.index({at::arange(h.size(0), at.options()), at});
}

class Gpt1Model : public CausalModel {
 public:
  Gpt1Model(const ModelConfig& config, const Placement& placement)
      : CausalModel(config, placement) {}

  absl::Status Load(WeightLoader& w) {
    const ModelConfig& c = config();
    const int64_t d = c.hidden_size;
    TRIAD_ASSIGN_OR_RETURN(tokens_embed_,
                           w.Get("transformer.tokens_embed.weight", {c.vocab_size, d}));
    TRIAD_ASSIGN_OR_RETURN(positions_embed_,
                           w.Get("transformer.positions_embed.weight", {c.max_positions, d}));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = absl::StrCat("transformer.h.", i, ".");
      Gpt1Block b;
      TRIAD_ASSIGN_OR_RETURN(b.c_attn, w.GetConv1D(p + "attn.c_attn", d, 3 * d));
      TRIAD_ASSIGN_OR_RETURN(b.c_proj, w.GetConv1D(p + "attn.c_proj", d, d));
      TRIAD_ASSIGN_OR_RETURN(b.c_fc, w.GetConv1D(p + "mlp.c_fc", d, c.intermediate_size));
      TRIAD_ASSIGN_OR_RETURN(b.mlp_proj, w.GetConv1D(p + "mlp.c_proj", c.intermediate_size, d));
      TRIAD_ASSIGN_OR_RETURN(b.ln1_w, w.Get(p + "ln_1.weight", {d}));
      TRIAD_ASSIGN_OR_RETURN(b.ln1_b, w.Get(p + "ln_1.bias", {d}));
      TRIAD_ASSIGN_OR_RETURN(b.ln2_w, w.Get(p + "ln_2.weight", {d}));
      TRIAD_ASSIGN_OR_RETURN(b.ln2_b, w.Get(p + "ln_2.bias", {d}));
      blocks_.push_back(std::move(b));
    }
    lm_head_.weight = tokens_embed_;
    if (!c.tie_word_embeddings && w.Has("lm_head.weight")) {
      TRIAD_ASSIGN_OR_RETURN(lm_head_, w.GetLinear("lm_head", d, c.vocab_size, false));
    }
    if (c.head == HeadKind::kSequenceClassification) {
      TRIAD_ASSIGN_OR_RETURN(score_, w.GetLinear("score", d, c.num_labels, false));
    } else if (c.head == HeadKind::kDoubleHeads) {
      TRIAD_ASSIGN_OR_RETURN(mc_head_, w.GetLinear("multiple_choice_head.summary", d, 1, true));
    }
    set_weight_bytes(w.bytes_loaded());
    return absl::OkStatus();
  }

 protected:
  at::Tensor LmHead(const at::Tensor& hidden) const override { return lm_head_(hidden); }
  at::Tensor HeadOnHidden(const at::Tensor& hidden) const override {
    const Linear& head = score_.weight.defined() ? score_ : mc_head_;
    if (!head.weight.defined()) throw Unsupported{"the checkpoint has no classification head"};
    return head(hidden).to(at::kFloat);
  }

  at::Tensor ClassifySequenceImpl(const at::Tensor& input_ids,
                                  const at::Tensor& attention_mask) const override {
    if (!score_.weight.defined()) throw Unsupported{"the checkpoint has no classification head"};
    const at::Tensor ids = input_ids.to(placement().device);
    const at::Tensor h = HiddenOnce(ids, attention_mask);
    // HF reads (first pad index - 1) mod T; a row without pad is read at T - 1.
    const int64_t steps = ids.size(1);
    at::Tensor rows_end = at::full({ids.size(0)}, steps - 1, ids.options());
    if (config().pad_token_id >= 0) {
      rows_end = at::remainder(ids.eq(config().pad_token_id).to(at::kInt).argmax(-1) - 1, steps);
    }
    return score_(AtPositions(h, rows_end)).to(at::kFloat);
  }

  MultipleChoiceOutput MultipleChoiceImpl(const at::Tensor& input_ids,
                                          const at::Tensor& mc_token_ids) const override {
    if (!mc_head_.weight.defined()) throw Unsupported{"the checkpoint has no multiple-choice head"};
    const at::Device device = placement().device;
    const int64_t batch = input_ids.size(0), choices = input_ids.size(1), steps = input_ids.size(2);
    const at::Tensor ids = input_ids.to(device).reshape({batch * choices, steps});
    const at::Tensor h = HiddenOnce(ids, at::Tensor());
    MultipleChoiceOutput out;
    out.mc_logits = mc_head_(AtPositions(h, mc_token_ids.reshape({batch * choices})))
                        .to(at::kFloat)
                        .view({batch, choices});
    out.lm_logits = lm_head_(h).to(at::kFloat).view({batch, choices, steps, -1});
    return out;
  }

  at::Tensor HeadLogitsImpl(const at::Tensor& input_ids,
                            const at::Tensor& read_index) const override {
    const Linear& head = score_.weight.defined() ? score_ : mc_head_;
    if (!head.weight.defined()) throw Unsupported{"the checkpoint has no classification head"};
    const at::Tensor ids = input_ids.to(placement().device);
    // Right padding needs no mask: causal attention never lets a real token see a later pad.
    return head(AtPositions(HiddenOnce(ids, at::Tensor()), read_index)).to(at::kFloat);
  }

  at::Tensor Hidden(const at::Tensor& ids, const at::Tensor& positions,
                    AttentionContext& ctx) const override {
    const ModelConfig& c = config();
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
    at::Tensor h = at::embedding(tokens_embed_, ids) + at::embedding(positions_embed_, positions);
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const Gpt1Block& b = blocks_[i];
      const std::vector<at::Tensor> qkv = b.c_attn(h).split(c.hidden_size, -1);
      const at::Tensor a = ctx.SelfAttend(static_cast<int64_t>(i), SplitHeads(qkv[0], c.num_heads),
                                          SplitHeads(qkv[1], c.num_heads),
                                          SplitHeads(qkv[2], c.num_heads), scale);
      const at::Tensor n = LayerNorm(h + b.c_proj(MergeHeads(a)), b.ln1_w, b.ln1_b, c.norm_eps);
      const at::Tensor m = b.mlp_proj(Activation(c.activation, b.c_fc(n)));
      h = LayerNorm(n + m, b.ln2_w, b.ln2_b, c.norm_eps);
    }
    return h;
  }

 private:
  at::Tensor tokens_embed_, positions_embed_;
  std::vector<Gpt1Block> blocks_;
  Linear lm_head_, score_, mc_head_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadGpt1(const ModelConfig& config, WeightLoader& weights,
                                                const Placement& placement) {
  auto model = std::make_unique<Gpt1Model>(config, placement);
  TRIAD_RETURN_IF_ERROR(model->Load(weights));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace triad
