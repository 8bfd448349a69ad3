// The sampler chain: greedy is argmax, each processor keeps exactly the tokens its definition
// keeps, penalties follow HF/OpenAI semantics, and a seed fixes the draw.
#include "model/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

namespace triad {
namespace {

at::Tensor Logits(std::vector<float> v) { return at::tensor(v, at::kFloat); }

std::set<int64_t> Support(SamplingParams p, const at::Tensor& logits, int draws = 400) {
  p.has_seed = true;
  p.seed = 99;
  Sampler sampler(p, {});
  std::set<int64_t> seen;
  for (int i = 0; i < draws; ++i) seen.insert(sampler.Sample(logits, {}, 0).token_id);
  return seen;
}

TEST(SamplingTest, GreedyIsArgmaxAndLogprobIsRaw) {
  SamplingParams p;
  p.temperature = 0;
  Sampler sampler(p, {});
  const at::Tensor logits = Logits({0.1f, 2.0f, -1.0f, 1.5f});
  const SampledToken t = sampler.Sample(logits, {}, 0);
  EXPECT_EQ(t.token_id, 1);
  EXPECT_NEAR(t.logprob, at::log_softmax(logits, -1)[1].item<float>(), 1e-6);
}

// Plain greedy (no penalty or suppression) takes its own single-pass argmax: it must pick what
// torch.argmax picks on every row: the first of tied maxima wherever they fall (in the
// vectorised body, across lanes, in the tail past the last 16), -inf rows, rows shorter than
// one vector, and NaN (counted as the largest, the first one wins).
TEST(SamplingTest, GreedyArgmaxIsTorchsChoice) {
  SamplingParams p;
  p.temperature = 0;
  p.logprobs = false;
  Sampler sampler(p, {});
  std::vector<at::Tensor> rows;
  const at::Generator gen = at::detail::createCPUGenerator(7);
  for (int64_t n : {1, 5, 16, 17, 31, 32, 33, 100, 32000, 32003}) {
    const at::Tensor r = at::randn({n}, gen, at::TensorOptions().dtype(at::kFloat));
    rows.push_back(r);
    for (int64_t at_ : {int64_t{0}, n / 3, n - 1}) {  // ties: a max repeated later and earlier
      at::Tensor t = r.clone();
      t[at_] = 10.0f;
      t[n - 1 - (n - 1 - at_) / 2] = 10.0f;
      rows.push_back(t);
    }
    rows.push_back(at::full({n}, -std::numeric_limits<float>::infinity()));
    at::Tensor nan = r.clone();
    nan[n / 2] = std::nanf("");
    rows.push_back(nan);
  }
  at::Tensor nan_in_tail = at::zeros({35});
  nan_in_tail[34] = std::nanf("");
  rows.push_back(nan_in_tail);
  for (size_t i = 0; i < rows.size(); ++i) {
    const SampledToken t = sampler.Sample(rows[i], {}, 0);
    EXPECT_EQ(t.token_id, rows[i].argmax().item<int64_t>()) << "row " << i << " of "
                                                            << rows[i].size(0);
    EXPECT_EQ(t.logprob, 0.0f);  // not asked for
  }
  // Asked for, the log-prob is the raw log-softmax of the chosen token, as on the other paths.
  p.logprobs = true;
  Sampler with_logprobs(p, {});
  const at::Tensor r = at::randn({1000}, gen);
  const SampledToken t = with_logprobs.Sample(r, {}, 0);
  EXPECT_EQ(t.logprob, at::log_softmax(r, -1)[t.token_id].item<float>());
}

TEST(SamplingTest, TopKTopPMinPKeepTheirDefinedSets) {
  // probabilities ~ 0.64, 0.24, 0.09, 0.03
  const at::Tensor logits = Logits({3.0f, 2.0f, 1.0f, -0.1f});
  SamplingParams p;
  p.top_k = 2;
  EXPECT_EQ(Support(p, logits), (std::set<int64_t>{0, 1}));
  p = SamplingParams();
  p.top_p = 0.7;  // 0.64 < 0.7 <= 0.88: the two most likely
  EXPECT_EQ(Support(p, logits), (std::set<int64_t>{0, 1}));
  p = SamplingParams();
  p.min_p = 0.2;  // keep p >= 0.2 * 0.64 = 0.128
  EXPECT_EQ(Support(p, logits), (std::set<int64_t>{0, 1}));
  p = SamplingParams();
  EXPECT_EQ(Support(p, logits, 2000).size(), 4u);
}

TEST(SamplingTest, PenaltiesAndMinNewTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 4.0;  // 2.0 / 4 = 0.5 < 1.0: token 0 loses to token 1
  Sampler rep(p, {});
  EXPECT_EQ(rep.Sample(Logits({2.0f, 1.0f, 0.0f}), {0}, 0).token_id, 1);
  p = SamplingParams();
  p.temperature = 0;
  p.frequency_penalty = 0.6;  // token 0 generated twice: 2.0 - 1.2 = 0.8 < 1.0
  Sampler freq(p, {});
  EXPECT_EQ(freq.Sample(Logits({2.0f, 1.0f, 0.0f}), {0, 0}, 2).token_id, 1);
  p = SamplingParams();
  p.temperature = 0;
  p.min_new_tokens = 2;
  Sampler min_new(p, {0});
  EXPECT_EQ(min_new.Sample(Logits({2.0f, 1.0f}), {}, 1).token_id, 1);  // eos suppressed
  EXPECT_EQ(min_new.Sample(Logits({2.0f, 1.0f}), {}, 2).token_id, 0);
}

TEST(SamplingTest, SeedFixesTheDraw) {
  const at::Tensor logits = at::randn({50});
  SamplingParams p;
  p.has_seed = true;
  p.seed = 5;
  Sampler a(p, {}), b(p, {});
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(a.Sample(logits, {}, i).token_id, b.Sample(logits, {}, i).token_id);
  }
}

// Found by fuzzing (tests/fuzz/sampler_fuzz.cc): a temperature small enough to overflow the
// top logits to +inf made every probability NaN and the draw fell on the last token; a huge
// repetition penalty did the same; top_logprobs above the vocabulary threw from topk.
TEST(SamplingTest, ExtremeValuesStayWellDefined) {
  const at::Tensor logits = Logits({1.0f, 5.0f, 3.0f, -2.0f});
  SamplingParams p;
  p.temperature = 1e-40;  // a valid (subnormal) float temperature: the greedy limit
  EXPECT_EQ(Support(p, logits, 50), (std::set<int64_t>{1}));
  p = SamplingParams();
  p.repetition_penalty = 1e-40;  // the context's positive logits go to +inf
  p.has_seed = true;
  Sampler boosted(p, {});
  EXPECT_EQ(boosted.Sample(logits, {2, 0}, 0).token_id, 0);  // the first +inf
  p = SamplingParams();
  p.top_logprobs = 20;
  Sampler top(p, {});
  EXPECT_EQ(top.Sample(logits, {}, 0).top_logprobs.size(), 4u);
}

TEST(SamplingTest, ValidateNamesTheField) {
  auto field = [](SamplingParams p) { return std::string(p.Validate().message()); };
  SamplingParams p;
  EXPECT_TRUE(p.Validate().ok());
  p.temperature = -0.5;
  EXPECT_NE(field(p).find("temperature"), std::string::npos);
  p = SamplingParams();
  p.top_p = 1.5;
  EXPECT_NE(field(p).find("top_p"), std::string::npos);
  p = SamplingParams();
  p.typical_p = 0;
  EXPECT_NE(field(p).find("typical_p"), std::string::npos);
  p = SamplingParams();
  p.max_new_tokens = 0;
  EXPECT_NE(field(p).find("max_new_tokens"), std::string::npos);
  p = SamplingParams();
  p.repetition_penalty = 0;
  EXPECT_NE(field(p).find("repetition_penalty"), std::string::npos);
}

}  // namespace
}  // namespace triad
