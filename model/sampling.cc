#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace triad {
namespace {

absl::Status Bad(const char* field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// torch.argmax's choice over x[0..n) (the first index of the largest value), or -1 when x
// holds a NaN (torch counts NaN as the largest; the caller asks ATen then). One pass: sixteen
// independent lanes each keep their largest value and its first index (selects the compiler
// vectorises), then the first index among the lanes holding the overall largest.
int64_t FirstArgmax(const float* x, int64_t n) {
  constexpr int kLanes = 16;
  if (n < kLanes || n > std::numeric_limits<int32_t>::max()) return -1;
  float lane_max[kLanes];
  int32_t lane_at[kLanes], lane_nan[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    lane_max[j] = x[j];
    lane_at[j] = j;
    lane_nan[j] = x[j] != x[j] ? 1 : 0;
  }
  int32_t i = kLanes;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {  // written so that GCC vectorises it (no bool/branch)
      const float v = x[i + j];
      const int32_t more = v > lane_max[j] ? -1 : 0;
      lane_max[j] = more ? v : lane_max[j];
      lane_at[j] = more ? i + j : lane_at[j];
      lane_nan[j] |= v != v ? 1 : 0;
    }
  }
  int32_t nan = 0;
  for (; i < n; ++i) {  // the tail joins lane 0 (its indices are larger than lane 0's)
    const bool more = x[i] > lane_max[0];
    lane_max[0] = more ? x[i] : lane_max[0];
    lane_at[0] = more ? i : lane_at[0];
    nan |= x[i] != x[i] ? 1 : 0;
  }
  for (int j = 0; j < kLanes; ++j) nan |= lane_nan[j];
  if (nan) return -1;
  int best = 0;
  for (int j = 1; j < kLanes; ++j) {
    if (lane_max[j] > lane_max[best] ||
        (lane_max[j] == lane_max[best] && lane_at[j] < lane_at[best])) {
      best = j;
    }
  }
  return lane_at[best];
}

// Keeps the smallest set of most likely tokens whose probability reaches `mass` (top-p).
void KeepMass(at::Tensor& logits, double mass) {
  const auto [sorted, order] = logits.sort(/*dim=*/-1, /*descending=*/true);
  const at::Tensor cumulative = at::softmax(sorted, -1).cumsum(-1);
  // Drop a token when the mass before it already reaches `mass`; the first always stays.
  at::Tensor drop = (cumulative - at::softmax(sorted, -1)).ge(mass);
  logits.index_fill_(0, order.masked_select(drop), kNegInf);
}

}  // namespace

absl::Status SamplingParams::Validate() const {
  if (max_new_tokens < 1) return Bad("max_new_tokens", "must be >= 1");
  if (min_new_tokens < 0) return Bad("min_new_tokens", "must be >= 0");
  if (min_new_tokens > max_new_tokens) return Bad("min_new_tokens", "exceeds max_new_tokens");
  if (!(temperature >= 0) || !std::isfinite(temperature)) return Bad("temperature", "must be >= 0");
  if (top_k < 0) return Bad("top_k", "must be >= 0");
  if (!(top_p > 0 && top_p <= 1)) return Bad("top_p", "must be in (0, 1]");
  if (!(min_p >= 0 && min_p < 1)) return Bad("min_p", "must be in [0, 1)");
  if (!(typical_p > 0 && typical_p <= 1)) return Bad("typical_p", "must be in (0, 1]");
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty)) {
    return Bad("repetition_penalty", "must be > 0");
  }
  if (!(presence_penalty >= -2 && presence_penalty <= 2)) {
    return Bad("presence_penalty", "must be in [-2, 2]");
  }
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2)) {
    return Bad("frequency_penalty", "must be in [-2, 2]");
  }
  if (top_logprobs < 0 || top_logprobs > 20) return Bad("top_logprobs", "must be in [0, 20]");
  for (int64_t id : stop_token_ids) {
    if (id < 0) return Bad("stop_token_ids", "must be non-negative");
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingParams& params, std::vector<int64_t> eos_ids)
    : params_(params),
      eos_ids_(std::move(eos_ids)),
      rng_(params.has_seed ? params.seed : std::random_device{}()) {}

at::Tensor Sampler::Process(at::Tensor logits, const std::vector<int64_t>& context,
                            int64_t num_generated) const {
  const int64_t vocab = logits.size(0);
  float* data = logits.data_ptr<float>();
  if (params_.repetition_penalty != 1.0) {
    // HF RepetitionPenaltyLogitsProcessor: each distinct id seen once.
    std::vector<bool> seen(static_cast<size_t>(vocab), false);
    for (int64_t id : context) {
      if (id < 0 || id >= vocab || seen[id]) continue;
      seen[id] = true;
      const double p = params_.repetition_penalty;
      data[id] = static_cast<float>(data[id] < 0 ? data[id] * p : data[id] / p);
    }
  }
  if (params_.presence_penalty != 0 || params_.frequency_penalty != 0) {
    std::unordered_map<int64_t, int64_t> counts;
    for (size_t i = context.size() - static_cast<size_t>(num_generated); i < context.size(); ++i) {
      ++counts[context[i]];
    }
    for (const auto& [id, n] : counts) {
      if (id < 0 || id >= vocab) continue;
      data[id] -= static_cast<float>(params_.presence_penalty +
                                     params_.frequency_penalty * static_cast<double>(n));
    }
  }
  if (num_generated < params_.min_new_tokens) {
    for (int64_t id : eos_ids_) {
      if (id >= 0 && id < vocab) data[id] = kNegInf;
    }
    for (int64_t id : params_.stop_token_ids) {
      if (id < vocab) data[id] = kNegInf;
    }
  }
  if (params_.temperature == 0) return logits;
  if (params_.temperature != 1.0) {
    // Shifted by the largest logit first (softmax and every warper below are shift-invariant),
    // so a tiny temperature cannot overflow the top logits to +inf (and the draw to NaN): the
    // best token stays at 0 and the others fall towards -inf, the greedy limit.
    const float top = logits.max().item<float>();
    if (std::isfinite(top)) logits.sub_(top);
    logits.div_(params_.temperature);
  }
  if (params_.top_k > 0 && params_.top_k < vocab) {
    const at::Tensor kth = std::get<0>(logits.topk(params_.top_k)).min();
    logits.masked_fill_(logits.lt(kth), kNegInf);
  }
  if (params_.top_p < 1.0) KeepMass(logits, params_.top_p);
  if (params_.min_p > 0) {
    const at::Tensor probs = at::softmax(logits, -1);
    logits.masked_fill_(probs.lt(probs.max() * params_.min_p), kNegInf);
  }
  if (params_.typical_p < 1.0) {
    // HF TypicalLogitsWarper: rank by |(-log p) - entropy|, keep the smallest set reaching
    // typical_p mass.
    const at::Tensor logp = at::log_softmax(logits, -1);
    const at::Tensor p = logp.exp();
    const at::Tensor entropy = -(at::nan_to_num(logp * p)).sum();
    const at::Tensor shifted = (-logp - entropy).abs();
    const auto [sorted_shift, order] = shifted.sort();
    const at::Tensor cumulative = p.index_select(0, order).cumsum(-1);
    const int64_t last = std::min<int64_t>(cumulative.lt(params_.typical_p).sum().item<int64_t>(),
                                           vocab - 1);
    const at::Tensor cutoff = sorted_shift[last];
    logits.masked_fill_(shifted.gt(cutoff), kNegInf);
  }
  return logits;
}

bool Sampler::PlainGreedy(int64_t num_generated) const {
  const bool suppressing = num_generated < params_.min_new_tokens &&
                           !(eos_ids_.empty() && params_.stop_token_ids.empty());
  return params_.repetition_penalty == 1.0 && params_.presence_penalty == 0 &&
         params_.frequency_penalty == 0 && !suppressing && params_.temperature == 0;
}

SampledToken Sampler::Sample(const at::Tensor& raw_logits, const std::vector<int64_t>& context,
                             int64_t num_generated) {
  const at::Tensor raw = raw_logits.to(at::kCPU, at::kFloat).contiguous();
  const bool want_logprobs = params_.logprobs || params_.top_logprobs > 0;
  const at::Tensor logprobs = want_logprobs ? at::log_softmax(raw, -1) : at::Tensor();
  SampledToken out;
  if (PlainGreedy(num_generated)) {
    // Plain greedy, the common case: no copy for Process and a single-pass argmax instead of
    // ATen's (one row of 32000 logits: ~50 us -> ~8 us per token without log-probs).
    out.token_id = FirstArgmax(raw.data_ptr<float>(), raw.size(0));
    if (out.token_id < 0) out.token_id = raw.argmax().item<int64_t>();  // NaN, or tiny/huge rows
  } else {
    const at::Tensor processed = Process(raw.clone(), context, num_generated);
    if (params_.temperature == 0) {
      out.token_id = processed.argmax().item<int64_t>();
    } else {
      // Inverse-CDF draw in double from this request's RNG (reproducible for a seed).
      const at::Tensor probs = at::softmax(processed.to(at::kDouble), -1).contiguous();
      const double* p = probs.data_ptr<double>();
      const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      double cumulative = 0;
      int64_t chosen = -1;
      for (int64_t i = 0; i < probs.size(0); ++i) {
        if (!(p[i] > 0)) continue;  // also NaN: a +inf logit (a huge penalty) makes softmax NaN
        chosen = i;  // the last token with mass catches rounding at the top end
        cumulative += p[i];
        if (u < cumulative) break;
      }
      // No token with mass: every probability was NaN, from +inf logits; take the first of those.
      out.token_id = chosen >= 0 ? chosen : processed.argmax().item<int64_t>();
    }
  }
  if (want_logprobs) out.logprob = logprobs[out.token_id].item<float>();
  if (params_.top_logprobs > 0) {
    const auto [values, ids] = logprobs.topk(std::min(params_.top_logprobs, logprobs.size(0)));
    for (int64_t i = 0; i < values.size(0); ++i) {
      out.top_logprobs.emplace_back(ids[i].item<int64_t>(), values[i].item<float>());
    }
  }
  return out;
}

}  // namespace triad
