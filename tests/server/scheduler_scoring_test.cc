// Scoring (classification) requests through the scheduler: batched results equal the model
// library's solo results, the batching window and batch caps hold, a burst of scoring shares
// the loop with running generations without changing either's outputs, and cancellation,
// deadlines and bad input behave.
#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <thread>

#include "model/generation.h"
#include "server/scheduler.h"
#include "tests/server/scheduler_test_util.h"

namespace triad {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Model> Load(const std::string& name) { return testing::LoadFixtureModel(name); }

std::vector<int64_t> Ids(int64_t len, uint64_t seed, int64_t low = 3, int64_t high = 997) {
  auto gen = at::detail::createCPUGenerator(seed);
  const at::Tensor t = at::randint(low, high, {len}, gen, at::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + len);
}

// A context with three candidates of different lengths.
ScoringItem Item(uint64_t seed) {
  return {Ids(4 + static_cast<int64_t>(seed % 7), seed),
          {Ids(1, seed + 100), Ids(3, seed + 200), Ids(2 + static_cast<int64_t>(seed % 3), seed + 300)}};
}

struct PendingScore {
  std::shared_ptr<RequestHandle> handle;
  std::future<ScoringResult> done;
};

PendingScore Submit(Scheduler& s, ScoringRequest r) {
  auto promise = std::make_shared<std::promise<ScoringResult>>();
  r.on_done = [promise](const ScoringResult& result) { promise->set_value(result); };
  auto handle = s.SubmitScoring(std::move(r));
  EXPECT_TRUE(handle.ok()) << handle.status();
  return {handle.ok() ? *handle : nullptr, promise->get_future()};
}

// Batched scores equal the item scored alone; batching changes float32 summation order only.
constexpr double kTolerance = 1e-4;

void ExpectSolo(const Model& model, const ScoringItem& item,
                const std::vector<CandidateScore>& actual) {
  auto solo = ScoreCandidates(model, {item});
  ASSERT_TRUE(solo.ok()) << solo.status();
  ASSERT_EQ(actual.size(), (*solo)[0].size());
  for (size_t j = 0; j < actual.size(); ++j) {
    ASSERT_EQ(actual[j].token_logprobs.size(), (*solo)[0][j].token_logprobs.size());
    EXPECT_NEAR(actual[j].logprob_sum, (*solo)[0][j].logprob_sum, kTolerance) << "candidate " << j;
  }
}

TEST(SchedulerScoringTest, ConcurrentRequestsBatchWithinTheWindowAndEqualSoloScores) {
  for (const char* name : {"llama-tiny", "t5-tiny", "gpt1-tiny"}) {
    SCOPED_TRACE(name);
    auto model = Load(name);
    std::vector<int64_t> batches;
    SchedulerOptions options;
    options.batch_window = 200ms;  // every request below arrives well within it
    options.on_scoring_batch = [&](int64_t items) { batches.push_back(items); };
    Scheduler s(*model, options);
    std::vector<PendingScore> pending;
    std::vector<ScoringItem> items;
    for (uint64_t i = 0; i < 8; ++i) {
      items.push_back(Item(i));
      ScoringRequest r;
      r.items = {items.back()};
      pending.push_back(Submit(s, std::move(r)));
    }
    for (size_t i = 0; i < pending.size(); ++i) {
      const ScoringResult result = pending[i].done.get();
      ASSERT_TRUE(result.status.ok()) << result.status;
      ExpectSolo(*model, items[i], result.scores[0]);
    }
    s.Shutdown(0ms);
    EXPECT_EQ(batches, std::vector<int64_t>({8}));
  }
}

// Passes split by the memory estimate (here: one item per pass) give the same scores.
TEST(SchedulerScoringTest, ScoringPassesSplitByMemoryKeepTheScores) {
  for (const char* name : {"llama-tiny", "t5-tiny"}) {
    SCOPED_TRACE(name);
    auto model = Load(name);
    std::vector<ScoringItem> items;
    for (uint64_t i = 0; i < 5; ++i) items.push_back(Item(i));
    EXPECT_GT(ScoringPassBytes(*model, items[0]), 3 * 1000 * 4);  // >= 3 rows of logits
    auto together = ScoreCandidates(*model, items);
    ScoringOptions tiny;
    tiny.max_pass_bytes = 1;
    auto apart = ScoreCandidates(*model, items, tiny);
    auto pool = model->NewKvPool(256, 4);
    ASSERT_TRUE(pool.ok()) << pool.status();
    auto paged = ScoreCandidatesInPool(*model, **pool, items, false, tiny);  // a pass per candidate
    ASSERT_TRUE(together.ok() && apart.ok() && paged.ok());
    for (size_t i = 0; i < items.size(); ++i) {
      for (size_t j = 0; j < items[i].candidates.size(); ++j) {
        EXPECT_NEAR((*together)[i][j].logprob_sum, (*apart)[i][j].logprob_sum, kTolerance);
        EXPECT_NEAR((*together)[i][j].logprob_sum, (*paged)[i][j].logprob_sum, kTolerance);
      }
    }
  }
}

// Scoring runs in the model's KV pool: contexts that start with the same whole blocks (a
// few-shot preamble) are computed once and adopted by later requests from the prefix cache;
// every score equals the solo score and every block comes back. A pool too full for a batch
// scores it in memory of its own instead, with the same results.
TEST(SchedulerScoringTest, ScoringUsesThePoolAndItsPrefixCache) {
  auto model = Load("llama-tiny");
  const std::vector<int64_t> preamble = Ids(13, 42);
  auto item = [&](uint64_t seed) {
    ScoringItem i = Item(seed);
    i.context.insert(i.context.begin(), preamble.begin(), preamble.end());
    return i;
  };
  SchedulerOptions options;
  options.kv_block_size = 4;
  options.batch_window = 0ms;
  Scheduler s(*model, options);
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    ScoringRequest r;
    r.items = {item(seed)};
    const ScoringResult result = Submit(s, std::move(r)).done.get();
    ASSERT_TRUE(result.status.ok()) << result.status;
    ExpectSolo(*model, item(seed), result.scores[0]);
    // The preamble's 3 whole blocks, computed by the first request, serve the later ones.
    EXPECT_EQ(s.stats().prefix_cached_positions, seed == 1 ? 0 : 12 * static_cast<int64_t>(seed - 1));
  }
  EXPECT_EQ(s.stats().kv_used_bytes, 0);
  // Echo's scoring item (the first prompt token, then the rest as the candidate) leaves the
  // prompt's whole blocks cached: the generation that follows adopts all but the last token's.
  const std::vector<int64_t> prompt = Ids(21, 43);
  ScoringRequest echo;
  echo.items = {{{prompt[0]}, {{prompt.begin() + 1, prompt.end()}}}};
  ASSERT_TRUE(Submit(s, std::move(echo)).done.get().status.ok());
  auto generated = std::make_shared<std::promise<Completion>>();
  GenerationRequest g;
  g.prompt_ids = prompt;
  g.sampling.temperature = 0;
  g.sampling.max_new_tokens = 2;
  g.on_done = [generated](const Completion& c) { generated->set_value(c); };
  ASSERT_TRUE(s.Submit(std::move(g)).ok());
  EXPECT_EQ(generated->get_future().get().cached_prompt_tokens, 20);

  SchedulerOptions tight = options;
  tight.kv_budget_bytes = 2 * 4 * KvBytesPerToken(model->config(), at::kFloat);  // 2 blocks
  Scheduler small(*model, tight);
  ScoringRequest r;
  r.items = {item(1), item(2)};
  const ScoringResult result = Submit(small, std::move(r)).done.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  ExpectSolo(*model, item(1), result.scores[0]);
  ExpectSolo(*model, item(2), result.scores[1]);
  EXPECT_EQ(small.stats().prefix_cached_positions, 0);
}

TEST(SchedulerScoringTest, HeadSequencesEqualTheModelsHeadAlone) {
  auto model = Load("gpt1-tiny-cls");
  Scheduler s(*model, SchedulerOptions());
  ScoringRequest r;
  for (uint64_t i = 0; i < 5; ++i) {
    std::vector<int64_t> seq = Ids(3 + static_cast<int64_t>(i) * 2, i);
    seq.insert(seq.begin(), 997);
    seq.push_back(999);
    r.head_sequences.push_back(seq);
  }
  const auto sequences = r.head_sequences;
  const ScoringResult result = Submit(s, std::move(r)).done.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_EQ(result.head_logits.size(), sequences.size());
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto n = static_cast<int64_t>(sequences[i].size());
    auto solo = model->HeadLogits(at::tensor(sequences[i], at::kLong).view({1, n}),
                                  at::tensor({n - 1}, at::kLong));
    ASSERT_TRUE(solo.ok()) << solo.status();
    ASSERT_EQ(result.head_logits[i].size(), 3u);
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_NEAR(result.head_logits[i][static_cast<size_t>(k)], (*solo)[0][k].item<float>(),
                  kTolerance);
    }
  }
}

TEST(SchedulerScoringTest, BatchesAreCappedByItemsAndLargeRequestsSpanBatches) {
  auto model = Load("llama-tiny");
  std::vector<int64_t> batches;
  SchedulerOptions options;
  options.max_scoring_batch = 3;
  options.on_scoring_batch = [&](int64_t items) { batches.push_back(items); };
  Scheduler s(*model, options);
  ScoringRequest r;
  for (uint64_t i = 0; i < 8; ++i) r.items.push_back(Item(i));
  const auto items = r.items;
  const ScoringResult result = Submit(s, std::move(r)).done.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  for (size_t i = 0; i < items.size(); ++i) ExpectSolo(*model, items[i], result.scores[i]);
  s.Shutdown(0ms);
  EXPECT_EQ(batches, std::vector<int64_t>({3, 3, 2}));
}

// A refill-window wait (60 s, after a short generation finished beside a long one) ends as soon
// as a Classify batch is ready: the batch runs at once and the wait reports kClassify.
TEST(SchedulerScoringTest, ReadyClassifyBatchEndsARefillWait) {
  auto model = Load("llama-tiny");
  SchedulerOptions options;
  options.refill_window = 60s;
  options.batch_window = std::chrono::microseconds(0);
  std::mutex mu;
  std::vector<std::pair<double, RefillOutcome>> waits;
  options.on_refill_wait = [&](double seconds, RefillOutcome outcome) {
    std::lock_guard<std::mutex> lock(mu);
    waits.emplace_back(seconds, outcome);
  };
  Scheduler s(*model, options);
  auto generation = [](int64_t new_tokens, uint64_t seed, std::promise<Completion>* done) {
    GenerationRequest r;
    r.prompt_ids = Ids(4, seed);
    r.sampling.temperature = 0;
    r.sampling.max_new_tokens = new_tokens;
    r.sampling.ignore_eos = true;
    r.on_done = [done](const Completion& c) { done->set_value(c); };
    return r;
  };
  std::promise<Completion> long_done, short_done;
  auto long_handle = s.Submit(generation(64, 1, &long_done));
  ASSERT_TRUE(long_handle.ok());
  ASSERT_TRUE(s.Submit(generation(3, 2, &short_done)).ok());
  EXPECT_EQ(short_done.get_future().get().token_ids.size(), 3u);
  std::this_thread::sleep_for(200ms);  // the loop waits for the short one's successor by now
  ScoringRequest r;
  for (uint64_t i = 0; i < 2; ++i) r.items.push_back(Item(i));
  const auto start = SteadyClock::now();
  const ScoringResult result = Submit(s, std::move(r)).done.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_LT(SecondsBetween(start, SteadyClock::now()), 30.0);
  (*long_handle)->Cancel();
  EXPECT_EQ(long_done.get_future().get().reason, FinishReason::kCancelled);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0].second, RefillOutcome::kClassify);
  EXPECT_GE(waits[0].first, 0.15);
  EXPECT_LT(waits[0].first, 30.0);
}

TEST(SchedulerScoringTest, ScoringBesideRunningGenerationsKeepsBothOutputsAndStepsSmall) {
  auto model = Load("llama-tiny");
  std::vector<int64_t> batches;
  SchedulerOptions options;
  options.prefill_chunk_tokens = 32;
  options.batch_window = std::chrono::microseconds(0);  // batches by the token cap alone
  options.on_scoring_batch = [&](int64_t items) { batches.push_back(items); };
  // The loop pauses after the generation's second step until the scoring request is queued,
  // so the scoring batches always meet a running generation (however slow this thread is).
  std::promise<void> entered, queued;
  std::shared_future<void> go = queued.get_future().share();
  int steps = 0;  // only the loop thread touches it
  options.on_step = [&](const StepInfo&) {
    if (++steps == 2) {
      entered.set_value();
      go.wait();
    }
  };
  Scheduler s(*model, options);
  // Solo greedy output of the generation request.
  const std::vector<int64_t> prompt = Ids(10, 42);
  GenerationOptions g;
  g.max_new_tokens = 24;
  auto solo = Generate(*model, {at::tensor(prompt, at::kLong).view({1, -1}), at::Tensor()}, g);
  ASSERT_TRUE(solo.ok());

  std::promise<Completion> gen_done;
  GenerationRequest gr;
  gr.prompt_ids = prompt;
  gr.sampling.temperature = 0;
  gr.sampling.max_new_tokens = 24;
  gr.sampling.ignore_eos = true;
  gr.on_done = [&](const Completion& c) { gen_done.set_value(c); };
  ASSERT_TRUE(s.Submit(std::move(gr)).ok());
  entered.get_future().wait();  // decoding now (22 tokens to go), the loop held

  ScoringRequest r;
  for (uint64_t i = 0; i < 12; ++i) r.items.push_back(Item(i));  // ~13-20 tokens each
  const auto items = r.items;
  PendingScore scoring = Submit(s, std::move(r));
  queued.set_value();
  const ScoringResult result = scoring.done.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  for (size_t i = 0; i < items.size(); ++i) ExpectSolo(*model, items[i], result.scores[i]);
  const Completion c = gen_done.get_future().get();
  const at::Tensor expected = solo->sequences[0].narrow(0, solo->prompt_length, 24);
  EXPECT_TRUE(at::tensor(c.token_ids, at::kLong).equal(expected));
  // While the generation decoded, each scoring batch stayed within one 32-token chunk.
  std::vector<int64_t> expected_batches;
  int64_t tokens_in_batch = 0;
  for (const ScoringItem& item : items) {
    int64_t n = static_cast<int64_t>(item.context.size());
    for (const auto& cand : item.candidates) n += static_cast<int64_t>(cand.size());
    if (expected_batches.empty() || tokens_in_batch + n > 32) {
      expected_batches.push_back(0);
      tokens_in_batch = 0;
    }
    ++expected_batches.back();
    tokens_in_batch += n;
  }
  EXPECT_EQ(batches, expected_batches);
}

TEST(SchedulerScoringTest, CancelledAndExpiredRequestsEndWithoutRunning) {
  auto model = Load("llama-tiny");
  std::vector<int64_t> batches;
  SchedulerOptions options;
  options.batch_window = 300ms;
  options.on_scoring_batch = [&](int64_t items) { batches.push_back(items); };
  Scheduler s(*model, options);
  ScoringRequest a;
  a.items = {Item(1)};
  PendingScore cancelled = Submit(s, std::move(a));
  ScoringRequest b;
  b.items = {Item(2)};
  b.deadline = SteadyClock::now() + 20ms;
  PendingScore expired = Submit(s, std::move(b));
  cancelled.handle->Cancel();
  // Both end long before the 300 ms window closes.
  const ScoringResult c = cancelled.done.get();
  EXPECT_EQ(c.status.code(), absl::StatusCode::kCancelled);
  EXPECT_LT(c.total_seconds, 0.1);
  const ScoringResult e = expired.done.get();
  EXPECT_EQ(e.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(e.total_seconds, 0.1);
  s.Shutdown(0ms);
  EXPECT_TRUE(batches.empty());
}

// With max_queue 0 a scoring request that fits the next batch is accepted; one past a full
// batch of items (max_scoring_batch) would wait and is refused.
TEST(SchedulerScoringTest, MaxQueueZeroRefusesOnlyWhatWouldWait) {
  auto llama = Load("llama-tiny");
  SchedulerOptions options;
  options.max_queue = 0;
  options.max_scoring_batch = 2;
  options.batch_window = std::chrono::milliseconds(60000);  // nothing runs until two items wait
  Scheduler s(*llama, options);
  ScoringRequest first;
  first.items = {Item(1)};
  PendingScore one = Submit(s, std::move(first));
  ScoringRequest over;
  over.items = {Item(2), Item(3)};  // 1 + 2 > 2: would wait
  EXPECT_EQ(s.SubmitScoring(std::move(over)).status().code(), absl::StatusCode::kResourceExhausted);
  ScoringRequest second;
  second.items = {Item(4)};  // fills the batch: runs now
  PendingScore two = Submit(s, std::move(second));
  EXPECT_TRUE(one.done.get().status.ok());
  EXPECT_TRUE(two.done.get().status.ok());
}

TEST(SchedulerScoringTest, BadRequestsNameTheField) {
  auto llama = Load("llama-tiny");
  Scheduler s(*llama, SchedulerOptions());
  auto code_and_message = [&](ScoringRequest r) {
    auto h = s.SubmitScoring(std::move(r));
    return h.ok() ? std::string("ok") : std::string(h.status().message());
  };
  EXPECT_EQ(code_and_message({}), "nothing to score: no head sequences and no items");
  ScoringRequest bad_id;
  bad_id.items = {Item(1)};
  bad_id.items[0].candidates[1][0] = 5000;
  EXPECT_EQ(code_and_message(bad_id),
            "items[0].candidates[1]: token id 5000 outside the vocabulary [0, 1000)");
  ScoringRequest no_candidates;
  no_candidates.items = {{Ids(3, 1), {}}};
  EXPECT_EQ(code_and_message(no_candidates), "items[0].candidates: none");
  ScoringRequest too_long;
  too_long.items = {{Ids(llama->config().max_positions, 1), {Ids(2, 2)}}};
  EXPECT_NE(code_and_message(too_long).find("exceed the context length"), std::string::npos);
  ScoringRequest head;
  head.head_sequences = {{997, 5, 999}};
  EXPECT_EQ(code_and_message(head), "head_sequences: this model has no classification head");

  auto cls = Load("gpt1-tiny-cls");
  Scheduler c(*cls, SchedulerOptions());
  ScoringRequest empty_seq;
  empty_seq.head_sequences = {{997, 999}, {}};
  auto h = c.SubmitScoring(std::move(empty_seq));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().message(), "head_sequences[1]: empty");
  s.Shutdown(0ms);
  ScoringRequest late;
  late.items = {Item(1)};
  EXPECT_EQ(s.SubmitScoring(std::move(late)).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace triad
