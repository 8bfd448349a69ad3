// Fuzz target: the sampler chain (SamplingParams::Validate, then Sampler::Sample) on small
// vocabularies, every parameter drawn from a table of ordinary and extreme values (a
// temperature of 1e-40, a repetition penalty of 1e-40, a top_p of 1e-9...). For params that
// validate, every draw must be a vocabulary id with a finite raw log-prob, reproducible from
// its seed, never a token that min_new_tokens suppresses (while others remain), and
// without penalties a top_k of 1, a zero or a vanishing temperature must pick a most likely
// token; top_logprobs are sorted and at most the vocabulary.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "model/sampling.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// Reads bytes in order; past the end, zeros.
struct Bytes {
  const uint8_t* data;
  size_t size, at = 0;
  uint8_t Next() { return at < size ? data[at++] : 0; }
  template <typename T, size_t N>
  T Pick(const T (&table)[N]) {
    return table[Next() % N];
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  const int64_t vocab = 1 + in.Next() % 48;
  triad::SamplingParams p;
  const double temperatures[] = {1.0, 0.0, 0.7, 1e-30, 1e-40, 1e-6, 1e3, 1e30};
  const double masses[] = {1.0, 0.9, 0.5, 1e-9, 0.999999};
  const double min_ps[] = {0.0, 0.1, 0.5, 0.999999};
  const double repetition[] = {1.0, 1.3, 0.5, 1e-30, 1e-40, 1e30};
  const double presence[] = {0.0, 1.5, -2.0, 2.0};
  p.temperature = in.Pick(temperatures);
  p.top_k = in.Next() % (vocab + 3);
  p.top_p = in.Pick(masses);
  p.min_p = in.Pick(min_ps);
  p.typical_p = in.Pick(masses);
  p.repetition_penalty = in.Pick(repetition);
  p.presence_penalty = in.Pick(presence);
  p.frequency_penalty = in.Pick(presence);
  p.max_new_tokens = 8;
  p.min_new_tokens = in.Next() % 3;
  p.has_seed = true;
  p.seed = in.Next();
  p.top_logprobs = in.Next() % 22;
  const uint8_t num_stops = in.Next() % 3;
  for (uint8_t i = 0; i < num_stops; ++i) p.stop_token_ids.push_back(in.Next() % (vocab + 2));
  if (!p.Validate().ok()) return 0;
  FUZZ_ACCEPTED();

  const double scales[] = {1.0, 0.01, 30.0};
  const double scale = in.Pick(scales);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& x : logits) x = static_cast<float>((static_cast<int>(in.Next()) - 128) * scale);
  std::vector<int64_t> context;
  const int64_t context_size = 1 + in.Next() % 8;
  for (int64_t i = 0; i < context_size; ++i) context.push_back(in.Next() % vocab);
  const int64_t generated = in.Next() % (context_size + 1);
  const std::vector<int64_t> eos = {in.Next() % vocab};

  const at::Tensor t = at::tensor(logits);
  triad::Sampler sampler(p, eos), again(p, eos);
  const triad::SampledToken s = sampler.Sample(t, context, generated);
  FUZZ_CHECK(s.token_id >= 0 && s.token_id < vocab, "token %lld outside [0, %lld)",
             static_cast<long long>(s.token_id), static_cast<long long>(vocab));
  FUZZ_CHECK(std::isfinite(s.logprob) && s.logprob <= 1e-5f, "logprob %g", s.logprob);
  FUZZ_CHECK(again.Sample(t, context, generated).token_id == s.token_id, "not reproducible");

  if (generated < p.min_new_tokens) {
    std::vector<int64_t> suppressed = eos;
    suppressed.insert(suppressed.end(), p.stop_token_ids.begin(), p.stop_token_ids.end());
    int64_t allowed = 0;
    for (int64_t id = 0; id < vocab; ++id) {
      allowed += std::find(suppressed.begin(), suppressed.end(), id) == suppressed.end();
    }
    const bool hit =
        std::find(suppressed.begin(), suppressed.end(), s.token_id) != suppressed.end();
    FUZZ_CHECK(allowed == 0 || !hit, "token %lld is suppressed by min_new_tokens",
               static_cast<long long>(s.token_id));
  }
  const bool plain = p.repetition_penalty == 1.0 && p.presence_penalty == 0 &&
                     p.frequency_penalty == 0 && generated >= p.min_new_tokens;
  if (plain && (p.temperature <= 1e-6 || p.top_k == 1)) {
    const float best = *std::max_element(logits.begin(), logits.end());
    FUZZ_CHECK(logits[static_cast<size_t>(s.token_id)] == best,
               "temperature %g top_k %lld picked logit %g, best is %g", p.temperature,
               static_cast<long long>(p.top_k), logits[static_cast<size_t>(s.token_id)], best);
  }
  FUZZ_CHECK(static_cast<int64_t>(s.top_logprobs.size()) == std::min(p.top_logprobs, vocab),
             "%zu top_logprobs for k=%lld, vocab %lld", s.top_logprobs.size(),
             static_cast<long long>(p.top_logprobs), static_cast<long long>(vocab));
  for (size_t i = 1; i < s.top_logprobs.size(); ++i) {
    FUZZ_CHECK(s.top_logprobs[i - 1].second >= s.top_logprobs[i].second, "top_logprobs unsorted");
  }
  return 0;
}
