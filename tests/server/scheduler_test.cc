// The continuous-batching scheduler on the tiny fixture models: outputs equal the model
// library's solo outputs whatever the batch, seeded sampling is batch-independent, and
// cancellation, deadlines, the queue bound, the KV budget and shutdown behave.
#include "server/scheduler.h"
#include "tests/server/scheduler_test_util.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "model/generation.h"

namespace triad {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Model> Load(const std::string& name) { return testing::LoadFixtureModel(name); }

std::vector<int64_t> Prompt(int64_t len, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const at::Tensor t = at::randint(3, 1000, {len}, gen, at::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + len);
}

// Row 0's generated ids in `out`, up to and including eos.
std::vector<int64_t> GeneratedIds(const Model& m, const GenerationOutput& out) {
  std::vector<int64_t> ids;
  const auto& eos = m.config().eos_token_ids;
  for (int64_t t = out.prompt_length; t < out.sequences.size(1); ++t) {
    ids.push_back(out.sequences[0][t].item<int64_t>());
    if (std::find(eos.begin(), eos.end(), ids.back()) != eos.end()) break;
  }
  return ids;
}

// The generated ids Generate (greedy) returns for `prompt` alone, up to and including eos.
std::vector<int64_t> Solo(const Model& m, const std::vector<int64_t>& prompt, int64_t max_new) {
  GenerationOptions options;
  options.max_new_tokens = max_new;
  auto out = Generate(m, {at::tensor(prompt, at::kLong).view({1, -1}), at::Tensor()}, options);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? GeneratedIds(m, *out) : std::vector<int64_t>();
}

struct Pending {
  std::shared_ptr<RequestHandle> handle;
  std::future<Completion> done;
};

Pending Submit(Scheduler& s, std::vector<int64_t> prompt, SamplingParams sampling,
               std::function<bool(const TokenEvent&)> on_token = nullptr) {
  auto promise = std::make_shared<std::promise<Completion>>();
  GenerationRequest r;
  r.prompt_ids = std::move(prompt);
  r.sampling = sampling;
  r.on_token = std::move(on_token);
  r.on_done = [promise](const Completion& c) { promise->set_value(c); };
  auto handle = s.Submit(std::move(r));
  EXPECT_TRUE(handle.ok()) << handle.status();
  return {handle.ok() ? *handle : nullptr, promise->get_future()};
}

// The loop retires a finished sequence right after its on_done callback: poll briefly.
bool Drained(const Scheduler& s) {
  const auto until = SteadyClock::now() + 2s;
  while (SteadyClock::now() < until) {
    const SchedulerStats st = s.stats();
    if (st.running == 0 && st.kv_used_bytes == 0) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

SamplingParams Greedy(int64_t max_new) {
  SamplingParams p;
  p.temperature = 0;
  p.max_new_tokens = max_new;
  return p;
}

// 16 greedy requests of 1 to 20 prompt tokens submitted at once to a scheduler of 4 rows
// (8 prompt tokens a step, so long prompts take several steps beside decodes): each gets what
// Generate gives it alone, and the pool drains. Returns the scheduler's stats.
SchedulerStats ExpectSoloOutputs(const Model& model, SchedulerOptions options) {
  options.max_batch_size = 4;
  options.prefill_chunk_tokens = 8;
  Scheduler scheduler(model, options);
  std::vector<std::vector<int64_t>> prompts;
  std::vector<int64_t> max_new;
  std::vector<Pending> pending;
  for (int i = 0; i < 16; ++i) {
    prompts.push_back(Prompt(1 + (i * 7) % 20, 100 + i));
    max_new.push_back(3 + i % 9);
    pending.push_back(Submit(scheduler, prompts.back(), Greedy(max_new.back())));
  }
  for (int i = 0; i < 16; ++i) {
    const Completion c = pending[i].done.get();
    EXPECT_TRUE(c.status.ok()) << c.status;
    EXPECT_EQ(c.token_ids, Solo(model, prompts[i], max_new[i])) << "request " << i;
    EXPECT_EQ(c.prompt_tokens, static_cast<int64_t>(prompts[i].size()));
    EXPECT_TRUE(c.reason == FinishReason::kLength || c.reason == FinishReason::kEos);
  }
  EXPECT_TRUE(Drained(scheduler));
  return scheduler.stats();
}

TEST(SchedulerTest, ConcurrentRequestsEachGetTheirSoloOutput) {
  for (const char* name : {"llama-tiny", "t5-tiny", "gpt1-tiny"}) {
    SCOPED_TRACE(name);
    const SchedulerStats stats = ExpectSoloOutputs(*Load(name), SchedulerOptions());
    EXPECT_EQ(stats.graph_steps, 0);
  }
}

TEST(SchedulerTest, SeededSamplingIsTheSameAloneAndInABusyBatch) {
  auto model = Load("llama-tiny");
  SamplingParams sampled;
  sampled.temperature = 0.9;
  sampled.top_k = 50;
  sampled.top_p = 0.95;
  sampled.has_seed = true;
  sampled.seed = 1234;
  sampled.max_new_tokens = 12;
  sampled.ignore_eos = true;
  const std::vector<int64_t> prompt = Prompt(6, 7);
  std::vector<int64_t> alone;
  {
    Scheduler scheduler(*model, SchedulerOptions());
    alone = Submit(scheduler, prompt, sampled).done.get().token_ids;
  }
  Scheduler scheduler(*model, SchedulerOptions());
  std::vector<Pending> others;
  for (int i = 0; i < 6; ++i) others.push_back(Submit(scheduler, Prompt(3 + i, 50 + i), Greedy(10)));
  const Completion busy = Submit(scheduler, prompt, sampled).done.get();
  EXPECT_EQ(busy.token_ids, alone);
  EXPECT_EQ(alone.size(), 12u);
  for (auto& o : others) o.done.get();
}

TEST(SchedulerTest, CancelFreesTheSlotWithinAStep) {
  auto model = Load("llama-tiny");
  Scheduler scheduler(*model, SchedulerOptions());
  std::promise<void> first_token;
  std::atomic<bool> signalled{false};
  SamplingParams p = Greedy(200);
  p.ignore_eos = true;
  Pending pending = Submit(scheduler, Prompt(5, 1), p, [&](const TokenEvent&) {
    if (!signalled.exchange(true)) first_token.set_value();
    return false;
  });
  first_token.get_future().wait();
  pending.handle->Cancel();
  const Completion c = pending.done.get();
  EXPECT_EQ(c.reason, FinishReason::kCancelled);
  EXPECT_LT(c.token_ids.size(), 200u);
  EXPECT_TRUE(Drained(scheduler));
}

TEST(SchedulerTest, DeadlinesExpireQueuedAndRunningRequests) {
  auto model = Load("llama-tiny");
  Scheduler scheduler(*model, SchedulerOptions());
  GenerationRequest expired;
  expired.prompt_ids = Prompt(4, 2);
  expired.sampling = Greedy(5);
  expired.deadline = SteadyClock::now() - 1ms;
  std::promise<Completion> done;
  expired.on_done = [&](const Completion& c) { done.set_value(c); };
  ASSERT_TRUE(scheduler.Submit(std::move(expired)).ok());
  const Completion c = done.get_future().get();
  EXPECT_EQ(c.reason, FinishReason::kDeadline);
  EXPECT_TRUE(c.token_ids.empty());
}

TEST(SchedulerTest, StopFromTheTokenCallback) {
  auto model = Load("llama-tiny");
  Scheduler scheduler(*model, SchedulerOptions());
  SamplingParams p = Greedy(50);
  p.ignore_eos = true;
  const Completion c =
      Submit(scheduler, Prompt(4, 3), p, [](const TokenEvent& e) { return e.index == 2; })
          .done.get();
  EXPECT_EQ(c.reason, FinishReason::kStop);
  EXPECT_EQ(c.token_ids.size(), 3u);
}

TEST(SchedulerTest, QueueBoundAndKvBudget) {
  auto model = Load("llama-tiny");
  const int64_t per_token = KvBytesPerToken(model->config(), at::kFloat);
  SchedulerOptions options;
  options.max_batch_size = 8;
  options.max_queue = 3;
  options.kv_budget_bytes = 2 * (8 + 40) * per_token;  // 6 blocks of 16 positions
  Scheduler scheduler(*model, options);
  // Larger than the whole budget: refused at once.
  GenerationRequest huge;
  huge.prompt_ids = Prompt(8, 4);
  huge.sampling = Greedy(200);
  EXPECT_EQ(scheduler.Submit(std::move(huge)).status().code(), absl::StatusCode::kResourceExhausted);
  SamplingParams p = Greedy(40);
  p.ignore_eos = true;
  std::vector<Pending> accepted;
  int refused = 0;
  for (int i = 0; i < 12; ++i) {
    GenerationRequest r;
    r.prompt_ids = Prompt(8, 10 + i);
    r.sampling = p;
    auto promise = std::make_shared<std::promise<Completion>>();
    r.on_done = [promise](const Completion& c) { promise->set_value(c); };
    auto handle = scheduler.Submit(std::move(r));
    if (handle.ok()) {
      accepted.push_back({*handle, promise->get_future()});
    } else {
      EXPECT_EQ(handle.status().code(), absl::StatusCode::kResourceExhausted) << handle.status();
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  for (auto& a : accepted) EXPECT_EQ(a.done.get().token_ids.size(), 40u);
  EXPECT_LE(scheduler.stats().kv_peak_used_bytes, options.kv_budget_bytes);
  EXPECT_GT(scheduler.stats().kv_peak_used_bytes, 0);
  EXPECT_EQ(scheduler.stats().kv_capacity_bytes, 6 * 16 * per_token);
}

// max_queue counts requests that would wait, not those the next step starts: with
// max_queue 0 and two rows, two requests start and a third is refused (it would wait); once
// one finishes, a newcomer starts again. With max_queue 1 one more may wait, then none.
TEST(SchedulerTest, MaxQueueCountsOnlyRequestsThatWouldWait) {
  auto model = Load("llama-tiny");
  for (const int64_t max_queue : {0, 1}) {
    SCOPED_TRACE(max_queue);
    SchedulerOptions options;
    options.max_batch_size = 2;
    options.max_queue = max_queue;
    Scheduler scheduler(*model, options);
    SamplingParams long_run = Greedy(240);  // cancelled long before its end
    long_run.ignore_eos = true;
    GenerationRequest probe;
    probe.prompt_ids = Prompt(3, 9);
    probe.sampling = long_run;
    Pending a = Submit(scheduler, Prompt(3, 1), long_run);
    Pending b = Submit(scheduler, Prompt(3, 2), long_run);
    Pending waiting;
    if (max_queue == 1) waiting = Submit(scheduler, Prompt(3, 3), Greedy(2));
    const absl::Status refused = scheduler.Submit(probe).status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
    EXPECT_NE(std::string(refused.message()).find("max_queue " + std::to_string(max_queue)),
              std::string::npos)
        << refused;
    a.handle->Cancel();
    EXPECT_EQ(a.done.get().reason, FinishReason::kCancelled);
    if (max_queue == 1) {
      EXPECT_EQ(waiting.done.get().token_ids.size(), 2u);
    }
    // The loop publishes its running rows right after retiring: poll briefly.
    bool accepted = false;
    for (int i = 0; i < 200 && !accepted; ++i) {
      auto handle = scheduler.Submit(probe);
      if (handle.ok()) {
        accepted = true;
        (*handle)->Cancel();
      } else {
        std::this_thread::sleep_for(5ms);
      }
    }
    EXPECT_TRUE(accepted);
    b.handle->Cancel();
    EXPECT_EQ(b.done.get().reason, FinishReason::kCancelled);
  }
}

// The decode graphs' padding block comes out of a set KV budget: of 6 blocks, a request may
// hold 5, the capacity reported is 5, and the block is not counted as in use.
TEST(SchedulerTest, DecodeGraphsKeepTheirBlockOutOfTheBudget) {
  auto model = Load("llama-tiny");
  const int64_t per_token = KvBytesPerToken(model->config(), at::kFloat);
  SchedulerOptions options;
  options.kv_budget_bytes = 6 * 16 * per_token;
  options.decode_graphs = SchedulerOptions::DecodeGraphs::kEager;
  Scheduler scheduler(*model, options);
  EXPECT_EQ(scheduler.stats().kv_capacity_bytes, 5 * 16 * per_token);
  EXPECT_EQ(scheduler.stats().kv_used_bytes, 0);
  GenerationRequest six;  // 8 + 88 positions: 6 blocks
  six.prompt_ids = Prompt(8, 4);
  six.sampling = Greedy(88);
  EXPECT_EQ(scheduler.Submit(std::move(six)).status().code(), absl::StatusCode::kResourceExhausted);
  SamplingParams five = Greedy(72);  // 8 + 72 positions: 5 blocks
  five.ignore_eos = true;
  EXPECT_EQ(Submit(scheduler, Prompt(8, 5), five).done.get().token_ids.size(), 72u);
  EXPECT_TRUE(Drained(scheduler));
  EXPECT_GT(scheduler.stats().graph_steps, 0);
}

// Installs itself as `options.on_step`: records every step and holds the loop thread after its
// first step until Release(), so that requests submitted meanwhile meet a running sequence.
class FirstStepHold {
 public:
  explicit FirstStepHold(SchedulerOptions& options) {
    options.on_step = [this](const StepInfo& step) {
      if (first_) {  // only the loop thread touches it
        first_ = false;
        held_.set_value();
        go_.wait();
      }
      std::lock_guard<std::mutex> lock(mu_);
      steps_.push_back(step);
    };
  }
  // Returns once the loop is held after its first step.
  void WaitHeld() { held_.get_future().wait(); }
  void Release() { release_.set_value(); }
  std::vector<StepInfo> steps() {
    std::lock_guard<std::mutex> lock(mu_);
    return steps_;
  }

 private:
  std::mutex mu_;
  std::vector<StepInfo> steps_;
  std::promise<void> held_, release_;
  std::shared_future<void> go_ = release_.get_future().share();
  bool first_ = true;
};

// T5 encodes newcomers at admission: one admission takes at most prefill_chunk_tokens prompt
// tokens (always one sequence), so a burst joins over several steps instead of stalling the
// running sequence for every encoder at once.
TEST(SchedulerTest, T5AdmissionEncodesAtMostAChunkOfPromptTokens) {
  auto model = Load("t5-tiny");
  SchedulerOptions options;
  options.max_batch_size = 8;
  options.prefill_chunk_tokens = 10;
  FirstStepHold hold(options);  // until the burst is queued
  Scheduler scheduler(*model, options);
  SamplingParams p = Greedy(8);
  p.ignore_eos = true;
  std::vector<Pending> pending;
  pending.push_back(Submit(scheduler, Prompt(3, 1), p));
  hold.WaitHeld();
  for (int i = 0; i < 3; ++i) pending.push_back(Submit(scheduler, Prompt(6, 2 + i), p));
  hold.Release();
  for (Pending& r : pending) EXPECT_EQ(r.done.get().token_ids.size(), 8u);
  std::vector<int64_t> sizes;
  for (const StepInfo& step : hold.steps()) sizes.push_back(step.batch_size);
  ASSERT_GE(sizes.size(), 4u);
  // 6 + 6 > 10: the three newcomers join one per step.
  EXPECT_EQ(std::vector<int64_t>(sizes.begin(), sizes.begin() + 4), (std::vector<int64_t>{1, 2, 3, 4}));
}

// on_step reports each step's prompt tokens, decode rows and forward time: a lone prompt
// (prefill), a newcomer's prompt beside the first sequence's decode (mixed), then both decoding.
TEST(SchedulerTest, OnStepReportsPromptTokensDecodeRowsAndForwardTime) {
  auto model = Load("llama-tiny");
  SchedulerOptions options;
  FirstStepHold hold(options);  // until the newcomer is queued
  Scheduler scheduler(*model, options);
  SamplingParams p = Greedy(4);
  p.ignore_eos = true;
  Pending a = Submit(scheduler, Prompt(5, 1), p);
  hold.WaitHeld();
  Pending b = Submit(scheduler, Prompt(7, 2), p);
  hold.Release();
  EXPECT_EQ(a.done.get().token_ids.size(), 4u);
  EXPECT_EQ(b.done.get().token_ids.size(), 4u);
  const std::vector<StepInfo> steps = hold.steps();
  ASSERT_GE(steps.size(), 3u);
  auto summary = [](const StepInfo& s) {
    return std::vector<int64_t>{s.batch_size, s.prompt_tokens, s.decode_rows};
  };
  EXPECT_EQ(summary(steps[0]), (std::vector<int64_t>{1, 5, 0}));
  EXPECT_EQ(summary(steps[1]), (std::vector<int64_t>{2, 7, 1}));
  EXPECT_EQ(summary(steps[2]), (std::vector<int64_t>{2, 0, 2}));
  for (const StepInfo& s : steps) {
    EXPECT_GT(s.forward_seconds, 0);
    EXPECT_LT(s.forward_seconds, 30);
    EXPECT_EQ(s.path, StepPath::kChunks);
  }
}

// An idle scheduler with an admission window starts a burst in one step: four requests
// submitted one after another (far inside the window) all run in the first step. With room
// for more (8 rows, 12 of 256 prompt tokens) the head waits the window out; once the waiting
// requests fill a step (4 rows of 4) it starts without waiting.
TEST(SchedulerTest, AdmissionWindowStartsABurstInOneStep) {
  auto model = Load("llama-tiny");
  for (const int64_t max_batch : {8, 4}) {
    SCOPED_TRACE(max_batch);
    SchedulerOptions options;
    options.max_batch_size = max_batch;
    options.admission_window = max_batch == 8 ? std::chrono::milliseconds(300)
                                              : std::chrono::milliseconds(60000);
    std::mutex mu;
    std::vector<int64_t> sizes;
    options.on_step = [&](const StepInfo& step) {
      std::lock_guard<std::mutex> lock(mu);
      sizes.push_back(step.batch_size);
    };
    Scheduler scheduler(*model, options);
    SamplingParams p = Greedy(4);
    p.ignore_eos = true;
    const auto start = std::chrono::steady_clock::now();
    std::vector<Pending> pending;
    for (int i = 0; i < 4; ++i) pending.push_back(Submit(scheduler, Prompt(3, 1 + i), p));
    for (Pending& r : pending) EXPECT_EQ(r.done.get().token_ids.size(), 4u);
    const int64_t took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - start)
                                .count();
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_FALSE(sizes.empty());
    EXPECT_EQ(sizes[0], 4);
    if (max_batch == 8) {
      EXPECT_GE(took_ms, 300);
    } else {
      EXPECT_LT(took_ms, 30000);
    }
  }
}

// The refill window: after a step in which a request finished beside a running one, the next
// step waits for the finished client's next request, which a client sends 50 ms after the
// last token (far inside a 60 s window) and which then prefills in the very next step, ending
// the wait at once; without the window the running sequence would decode on without it for
// ~50 ms. (The successor's first token cancels the running request, so that its own finish
// comes with nothing running and waits for nothing.) With no successor the next step waits the
// window (300 ms) out.
TEST(SchedulerTest, RefillWindowWaitsForTheFinishedClientsNextRequest) {
  auto model = Load("llama-tiny");
  for (const bool successor : {true, false}) {
    SCOPED_TRACE(successor);
    SchedulerOptions options;
    options.refill_window = successor ? std::chrono::milliseconds(60000)
                                      : std::chrono::milliseconds(300);
    std::mutex mu;
    int64_t steps = 0;
    options.on_step = [&](const StepInfo&) {
      std::lock_guard<std::mutex> lock(mu);
      ++steps;
    };
    std::vector<std::pair<double, RefillOutcome>> waits;
    options.on_refill_wait = [&](double seconds, RefillOutcome outcome) {
      std::lock_guard<std::mutex> lock(mu);
      waits.emplace_back(seconds, outcome);
    };
    Scheduler scheduler(*model, options);
    SamplingParams long_run = Greedy(64);
    long_run.ignore_eos = true;
    Pending running = Submit(scheduler, Prompt(4, 1), long_run);
    SamplingParams short_run = Greedy(3);
    short_run.ignore_eos = true;
    int64_t steps_at_finish = 0;
    Pending first = Submit(scheduler, Prompt(4, 2), short_run, [&](const TokenEvent& e) {
      if (e.index == 2) {
        std::lock_guard<std::mutex> lock(mu);
        steps_at_finish = steps;
      }
      return false;
    });
    EXPECT_EQ(first.done.get().token_ids.size(), 3u);
    if (successor) {
      std::this_thread::sleep_for(50ms);
      int64_t steps_at_first_token = 0;
      const std::vector<int64_t> prompt = Prompt(5, 3);
      Pending next = Submit(scheduler, prompt, Greedy(4), [&](const TokenEvent& e) {
        if (e.index == 0) {
          std::lock_guard<std::mutex> lock(mu);
          steps_at_first_token = steps;
          running.handle->Cancel();
        }
        return false;
      });
      EXPECT_EQ(next.done.get().token_ids, Solo(*model, prompt, 4));
      EXPECT_EQ(running.done.get().reason, FinishReason::kCancelled);
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_EQ(steps_at_first_token, steps_at_finish + 1);
    } else {
      EXPECT_EQ(running.done.get().token_ids.size(), 64u);
    }
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(waits.size(), 1u);
    EXPECT_EQ(waits[0].second, successor ? RefillOutcome::kRefilled : RefillOutcome::kTimeout);
    if (successor) {
      EXPECT_GE(waits[0].first, 0.04);
      EXPECT_LT(waits[0].first, 30.0);
    } else {
      EXPECT_GE(waits[0].first, 0.3);
    }
    const SchedulerStats stats = scheduler.stats();
    EXPECT_EQ(stats.refill_waits, 1);
    EXPECT_EQ(stats.refills, successor ? 1 : 0);
  }
}

// What Generate's beam search returns for `prompt` alone: the generated ids (with the closing
// eos the library writes back) and the hypothesis score.
std::pair<std::vector<int64_t>, float> BeamSolo(const Model& m, const std::vector<int64_t>& prompt,
                                                const GenerationRequest& r) {
  GenerationOptions options;
  options.max_new_tokens = r.sampling.max_new_tokens;
  options.num_beams = r.num_beams;
  options.length_penalty = r.length_penalty;
  options.early_stopping = r.early_stopping;
  auto out = Generate(m, {at::tensor(prompt, at::kLong).view({1, -1}), at::Tensor()}, options);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  return {GeneratedIds(m, *out), out->sequences_scores[0].item<float>()};
}

struct BeamCase {
  std::vector<int64_t> prompt;
  GenerationRequest request;
};

std::vector<BeamCase> BeamCases() {
  std::vector<BeamCase> cases;
  int i = 0;
  for (const int64_t beams : {2, 4}) {
    for (const EarlyStopping early : {EarlyStopping::kTrue, EarlyStopping::kHeuristic}) {
      BeamCase c;
      c.prompt = Prompt(4 + 3 * i, 600 + i);
      c.request.sampling = Greedy(6 + 3 * i);
      c.request.num_beams = beams;
      c.request.early_stopping = early;
      c.request.length_penalty = i == 3 ? 0.5 : 1.0;
      cases.push_back(std::move(c));
      ++i;
    }
  }
  return cases;
}

// `c` is what the library's beam search gives `beam` alone: ids, score within 1e-4, reason.
void ExpectBeamSolo(const Model& m, const BeamCase& beam, const Completion& c) {
  ASSERT_TRUE(c.status.ok()) << c.status;
  const auto [ids, score] = BeamSolo(m, beam.prompt, beam.request);
  EXPECT_EQ(c.token_ids, ids);
  EXPECT_NEAR(c.sequence_score, score, 1e-4);
  EXPECT_TRUE(c.logprobs.empty());
  const bool closed = static_cast<int64_t>(ids.size()) < beam.request.sampling.max_new_tokens;
  EXPECT_EQ(c.reason, closed ? FinishReason::kEos : FinishReason::kLength);
}

Pending SubmitBeam(Scheduler& s, const BeamCase& c) {
  auto promise = std::make_shared<std::promise<Completion>>();
  GenerationRequest r = c.request;
  r.prompt_ids = c.prompt;
  r.on_done = [promise](const Completion& done) { promise->set_value(done); };
  auto handle = s.Submit(std::move(r));
  EXPECT_TRUE(handle.ok()) << handle.status();
  return {handle.ok() ? *handle : nullptr, promise->get_future()};
}

// Beam search runs in the loop, its beams rows of the ragged batch forking each other's KV
// blocks: each request (2 and 4 beams, early_stopping true and heuristic, a length penalty)
// returns what the model library's beam search returns for it alone, token for token and
// score within 1e-4, while greedy generations run beside it; every block comes back.
TEST(SchedulerTest, BeamSearchEqualsTheModelLibrary) {
  for (const char* name : {"llama-tiny", "t5-tiny", "gpt1-tiny"}) {
    SCOPED_TRACE(name);
    auto model = Load(name);
    SchedulerOptions options;
    options.kv_block_size = 4;  // beams fork mid-block and across blocks
    Scheduler scheduler(*model, options);
    const std::vector<BeamCase> cases = BeamCases();
    std::vector<Pending> beams, greedy;
    std::vector<std::vector<int64_t>> greedy_prompts;
    for (size_t i = 0; i < cases.size(); ++i) {
      beams.push_back(SubmitBeam(scheduler, cases[i]));
      greedy_prompts.push_back(Prompt(6, 700 + i));
      greedy.push_back(Submit(scheduler, greedy_prompts.back(), Greedy(10)));
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      SCOPED_TRACE(i);
      const Completion c = beams[i].done.get();
      ExpectBeamSolo(*model, cases[i], c);
      EXPECT_GT(c.first_token_seconds, 0);
      EXPECT_EQ(greedy[i].done.get().token_ids, Solo(*model, greedy_prompts[i], 10));
    }
    EXPECT_TRUE(Drained(scheduler));
  }
}

// A pool too small for everything at once: beam requests and generations preempt each other
// (a preempted beam search starts over), and every output still equals its solo output; a
// beam request that could not fit even alone is refused at once; cancelling one mid-search
// ends it within a step and returns its blocks; bad beam counts name the field.
TEST(SchedulerTest, BeamSearchUnderPoolPressure) {
  auto model = Load("llama-tiny");
  const int64_t per_token = KvBytesPerToken(model->config(), at::kFloat);
  SchedulerOptions tight;
  tight.kv_block_size = 4;
  tight.max_batch_size = 12;
  tight.kv_budget_bytes = 40 * 4 * per_token;  // 40 blocks
  std::promise<void> all_queued;
  std::shared_future<void> go = all_queued.get_future().share();
  tight.on_step = [go](const StepInfo&) { go.wait(); };
  Scheduler scheduler(*model, tight);
  std::vector<BeamCase> cases;
  for (int i = 0; i < 3; ++i) {
    BeamCase c;
    c.prompt = Prompt(6 + 2 * i, 800 + i);
    c.request.sampling = Greedy(14);
    c.request.num_beams = 2;  // 2 x 5 blocks + 2 for forking: fits alone
    c.request.early_stopping = EarlyStopping::kNever;
    cases.push_back(std::move(c));
  }
  std::vector<Pending> beams, greedy;
  std::vector<std::vector<int64_t>> prompts;
  SamplingParams long_greedy = Greedy(24);
  long_greedy.ignore_eos = true;
  for (size_t i = 0; i < cases.size(); ++i) {
    beams.push_back(SubmitBeam(scheduler, cases[i]));
    prompts.push_back(Prompt(8, 900 + i));
    greedy.push_back(Submit(scheduler, prompts.back(), long_greedy));
  }
  all_queued.set_value();
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectBeamSolo(*model, cases[i], beams[i].done.get());
    EXPECT_EQ(greedy[i].done.get().token_ids, Solo(*model, prompts[i], 24));
  }
  EXPECT_GT(scheduler.stats().preemptions, 0);
  EXPECT_LE(scheduler.stats().kv_peak_used_bytes, tight.kv_budget_bytes);
  EXPECT_TRUE(Drained(scheduler));

  GenerationRequest huge = cases[0].request;
  huge.prompt_ids = cases[0].prompt;
  huge.num_beams = 8;  // 8 x 5 blocks + 8 > 40
  const absl::Status refused = scheduler.Submit(huge).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("KV"), std::string::npos) << refused;
  for (const int64_t bad : {0, 5000}) {
    GenerationRequest r = cases[0].request;
    r.prompt_ids = cases[0].prompt;
    r.num_beams = bad;
    const absl::Status status = scheduler.Submit(r).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find("num_beams"), std::string::npos) << status;
  }

  BeamCase slow = cases[0];
  slow.request.sampling = Greedy(200);
  slow.request.num_beams = 3;
  std::atomic<int64_t> steps{0};
  SchedulerOptions watched;
  watched.on_step = [&steps](const StepInfo&) { ++steps; };
  Scheduler other(*model, watched);
  Pending cancelled = SubmitBeam(other, slow);
  const auto until = SteadyClock::now() + 10s;
  while (steps < 5 && SteadyClock::now() < until) std::this_thread::sleep_for(1ms);
  cancelled.handle->Cancel();
  EXPECT_EQ(cancelled.done.get().reason, FinishReason::kCancelled);
  EXPECT_TRUE(Drained(other));
}

// Paged KV: sequences hold blocks for what they have written, not for max_new_tokens, so a
// pool that fits only a few whole requests runs more at once; when it runs dry the newest
// sequences are preempted and recomputed later. Every output, greedy or seeded, equals the
// output the request gets alone in an ample pool, for every family.
TEST(SchedulerTest, PreemptedSequencesKeepTheirOutputs) {
  for (const char* name : {"llama-tiny", "t5-tiny", "gpt1-tiny"}) {
    SCOPED_TRACE(name);
    auto model = Load(name);
    std::vector<std::vector<int64_t>> prompts;
    std::vector<SamplingParams> params;
    for (int i = 0; i < 6; ++i) {
      prompts.push_back(Prompt(5 + 3 * i, 300 + i));
      SamplingParams p = Greedy(30 + 2 * i);
      if (i % 2 == 1) {
        p.temperature = 0.8;
        p.has_seed = true;
        p.seed = 77 + i;
      }
      p.ignore_eos = true;
      params.push_back(p);
    }
    std::vector<std::vector<int64_t>> alone;
    {
      Scheduler ample(*model, SchedulerOptions());
      for (int i = 0; i < 6; ++i) alone.push_back(Submit(ample, prompts[i], params[i]).done.get().token_ids);
    }
    SchedulerOptions tight;
    tight.max_batch_size = 6;
    tight.kv_block_size = 4;
    // 24 blocks of 4: each request alone needs at most 16 (T5: with its encoder's blocks).
    tight.kv_budget_bytes = 24 * 4 * KvBytesPerToken(model->config(), at::kFloat);
    std::atomic<int64_t> widest{0};
    // The loop waits after its first step until all six are queued (however slow this thread).
    std::promise<void> all_queued;
    std::shared_future<void> go = all_queued.get_future().share();
    tight.on_step = [&widest, go](const StepInfo& step) {
      go.wait();
      widest = std::max<int64_t>(widest, step.batch_size);
    };
    Scheduler scheduler(*model, tight);
    std::vector<Pending> pending;
    for (int i = 0; i < 6; ++i) pending.push_back(Submit(scheduler, prompts[i], params[i]));
    all_queued.set_value();
    for (int i = 0; i < 6; ++i) {
      const Completion c = pending[i].done.get();
      EXPECT_TRUE(c.status.ok()) << c.status;
      EXPECT_EQ(c.token_ids, alone[i]) << "request " << i;
      EXPECT_EQ(c.token_ids.size(), static_cast<size_t>(params[i].max_new_tokens));
    }
    const SchedulerStats stats = scheduler.stats();
    EXPECT_GT(stats.preemptions, 0);
    // Reserving every request's whole length up front (up to 15-16 blocks each) would have run
    // one at a time; with blocks taken as they fill, several share the steps.
    EXPECT_GE(widest.load(), 3);
    EXPECT_LE(stats.kv_peak_used_bytes, tight.kv_budget_bytes);
    EXPECT_TRUE(Drained(scheduler));
  }
}

// Prefix caching: a request whose tokens start with full blocks computed before (its prompt,
// or an earlier prompt plus its generated tokens, as a multi-turn chat sends) adopts them and
// computes only the rest; every output equals the request's solo output. Never the last
// prompt token: its logits are needed. Off, nothing is adopted.
TEST(SchedulerTest, PrefixCacheSkipsSharedPromptBlocks) {
  for (const char* name : {"llama-tiny", "gpt1-tiny"}) {
    SCOPED_TRACE(name);
    auto model = Load(name);
    for (bool caching : {true, false}) {
      SchedulerOptions options;
      options.kv_block_size = 4;
      options.prefix_caching = caching;
      Scheduler scheduler(*model, options);
      SamplingParams p = Greedy(6);
      p.ignore_eos = true;
      const std::vector<int64_t> first = Prompt(14, 900);
      auto run = [&](const std::vector<int64_t>& prompt, int64_t cached) {
        const Completion c = Submit(scheduler, prompt, p).done.get();
        EXPECT_EQ(c.token_ids, Solo(*model, prompt, 6));
        EXPECT_EQ(c.cached_prompt_tokens, caching ? cached : 0);
        return c.token_ids;
      };
      const std::vector<int64_t> output = run(first, 0);
      std::vector<int64_t> branch = first;  // same first 12 tokens (3 blocks), then different
      branch[12] = 5;
      branch[13] = 6;
      run(branch, 12);
      const int64_t after_branch = scheduler.stats().prefix_cached_positions;
      run(first, 12);  // 13 tokens could be skipped; whole blocks: 12
      const int64_t after_repeat = scheduler.stats().prefix_cached_positions;
      std::vector<int64_t> turn = first;  // the first exchange and a new message
      turn.insert(turn.end(), output.begin(), output.end());
      turn.push_back(7);
      // The first exchange computed 14 prompt + 5 generated positions (the 6th token was
      // sampled, never fed): 16 of them in whole blocks.
      run(turn, 16);
      const int64_t after_turn = scheduler.stats().prefix_cached_positions;
      if (caching) {
        EXPECT_EQ(after_branch, 12);
        EXPECT_EQ(after_repeat, 24);
        EXPECT_EQ(after_turn, 40);
      } else {
        EXPECT_EQ(after_turn, 0);
      }
    }
  }
}

// A long-running daemon must not leak KV blocks. A randomized mix against a tight pool with
// prefix caching: prompts sharing a few prefixes, some cancelled at random moments, some with
// deadlines that pass mid-generation, the rest running to their length under preemption; every
// fifth a beam search (forking and freeing blocks every step), and scoring requests whose
// contexts share the prefixes (some cancelled). Every request ends exactly once with a reason
// its treatment allows; every one that ran to its length has its solo output, every scoring
// its solo scores; and once all are done every block is back (cached blocks count as free), so
// the pool can be filled again.
TEST(SchedulerTest, RandomizedLoadReturnsEveryBlock) {
  auto model = Load("llama-tiny");
  SchedulerOptions options;
  options.max_batch_size = 8;
  options.kv_block_size = 4;
  options.prefill_chunk_tokens = 16;
  options.kv_budget_bytes = 40 * 4 * KvBytesPerToken(model->config(), at::kFloat);
  Scheduler scheduler(*model, options);
  std::mt19937_64 rng(2024);
  const std::vector<std::vector<int64_t>> prefixes = {Prompt(8, 500), Prompt(12, 501), {}};
  struct Case {
    std::vector<int64_t> prompt;
    int kind;  // 0 = runs to its length, 1 = cancelled, 2 = deadline
    GenerationRequest request;  // its parameters (num_beams > 1: beam search)
    Pending pending;
  };
  std::vector<Case> cases;
  struct Scored {
    ScoringItem item;
    bool cancelled;
    std::shared_ptr<RequestHandle> handle;
    std::future<ScoringResult> done;
  };
  std::vector<Scored> scored;
  for (int i = 0; i < 40; ++i) {
    Case c;
    c.prompt = prefixes[rng() % prefixes.size()];
    const std::vector<int64_t> tail = Prompt(1 + static_cast<int64_t>(rng() % 10), 600 + i);
    c.prompt.insert(c.prompt.end(), tail.begin(), tail.end());
    c.kind = static_cast<int>(rng() % 4) % 3;  // half run to their length
    GenerationRequest r;
    r.prompt_ids = c.prompt;
    r.sampling = Greedy(c.kind == 0 ? 12 : 60);
    r.sampling.ignore_eos = true;
    if (i % 5 == 4) {  // beam search: 2 beams that fork and free blocks every step
      r.num_beams = 2;
      r.sampling.max_new_tokens = 12;
      r.early_stopping = EarlyStopping::kNever;
    }
    c.request = r;
    if (c.kind == 2) r.deadline = SteadyClock::now() + std::chrono::milliseconds(rng() % 40);
    auto promise = std::make_shared<std::promise<Completion>>();
    auto calls = std::make_shared<std::atomic<int>>(0);
    r.on_done = [promise, calls](const Completion& done) {
      if (calls->fetch_add(1) == 0) promise->set_value(done);
      else ADD_FAILURE() << "on_done called twice";
    };
    auto handle = scheduler.Submit(std::move(r));
    ASSERT_TRUE(handle.ok()) << handle.status();
    c.pending = {*handle, promise->get_future()};
    cases.push_back(std::move(c));
    if (cases.back().kind == 1 && rng() % 2 == 0) cases.back().pending.handle->Cancel();
    if (i % 4 == 1) {  // classification scoring in the same pool, contexts sharing prefixes
      Scored sc;
      sc.item.context = prefixes[rng() % prefixes.size()];
      const std::vector<int64_t> rest = Prompt(2 + static_cast<int64_t>(rng() % 6), 700 + i);
      sc.item.context.insert(sc.item.context.end(), rest.begin(), rest.end());
      sc.item.candidates = {Prompt(1, 800 + i), Prompt(3, 900 + i)};
      sc.cancelled = rng() % 4 == 0;
      auto promise = std::make_shared<std::promise<ScoringResult>>();
      ScoringRequest request;
      request.items = {sc.item};
      request.on_done = [promise](const ScoringResult& result) { promise->set_value(result); };
      auto handle = scheduler.SubmitScoring(std::move(request));
      ASSERT_TRUE(handle.ok()) << handle.status();
      sc.handle = *handle;
      sc.done = promise->get_future();
      if (sc.cancelled) sc.handle->Cancel();
      scored.push_back(std::move(sc));
    }
  }
  for (Case& c : cases) {
    if (c.kind == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 5));
      c.pending.handle->Cancel();
    }
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const Completion done = cases[i].pending.done.get();
    SCOPED_TRACE(i);
    switch (cases[i].kind) {
      case 0:
        EXPECT_EQ(done.reason, FinishReason::kLength);
        if (cases[i].request.num_beams > 1) {
          EXPECT_EQ(done.token_ids, BeamSolo(*model, cases[i].prompt, cases[i].request).first);
        } else {
          EXPECT_EQ(done.token_ids, Solo(*model, cases[i].prompt, 12));
        }
        break;
      case 1:
        EXPECT_TRUE(done.reason == FinishReason::kCancelled || done.reason == FinishReason::kLength)
            << static_cast<int>(done.reason);
        break;
      default:
        EXPECT_TRUE(done.reason == FinishReason::kDeadline || done.reason == FinishReason::kLength)
            << static_cast<int>(done.reason);
    }
  }
  for (Scored& sc : scored) {
    const ScoringResult result = sc.done.get();
    if (sc.cancelled) {
      EXPECT_EQ(result.status.code(), absl::StatusCode::kCancelled) << result.status;
      continue;
    }
    ASSERT_TRUE(result.status.ok()) << result.status;
    auto solo = ScoreCandidates(*model, {sc.item});
    ASSERT_TRUE(solo.ok()) << solo.status();
    for (size_t j = 0; j < sc.item.candidates.size(); ++j) {
      EXPECT_NEAR(result.scores[0][j].logprob_sum, (*solo)[0][j].logprob_sum, 1e-4);
    }
  }
  EXPECT_TRUE(Drained(scheduler));
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.kv_used_bytes, 0);
  EXPECT_GT(stats.prefix_cached_positions, 0);
  // Every block can be taken again: one request that needs the whole pool completes.
  SamplingParams whole = Greedy(40 * 4 - 10);
  whole.ignore_eos = true;
  Pending last = Submit(scheduler, Prompt(10, 7), whole);
  ASSERT_EQ(last.done.wait_for(30s), std::future_status::ready) << "blocks leaked: never admitted";
  EXPECT_EQ(last.done.get().token_ids.size(), 150u);
}

TEST(SchedulerTest, BadRequestsNameTheField) {
  auto model = Load("llama-tiny");
  Scheduler scheduler(*model, SchedulerOptions());
  auto expect = [&](GenerationRequest r, const std::string& field) {
    auto status = scheduler.Submit(std::move(r)).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(status.message().find(field), std::string::npos) << status;
  };
  GenerationRequest r;
  r.prompt_ids = Prompt(4, 5);
  r.sampling.temperature = -1;
  expect(r, "temperature");
  r.sampling = SamplingParams();
  r.sampling.top_p = 0;
  expect(r, "top_p");
  r.sampling = SamplingParams();
  r.prompt_ids = {};
  expect(r, "prompt_ids");
  r.prompt_ids = {1, 4000};
  expect(r, "prompt_ids");
  r.prompt_ids = Prompt(250, 6);  // + 16 new tokens > 256 positions
  expect(r, "prompt_ids");
}

TEST(SchedulerTest, ShutdownDrainsInFlightAndRefusesNewWork) {
  auto model = Load("llama-tiny");
  Scheduler scheduler(*model, SchedulerOptions());
  SamplingParams p = Greedy(20);
  p.ignore_eos = true;
  Pending running = Submit(scheduler, Prompt(4, 8), p);
  scheduler.Shutdown(10s);
  EXPECT_EQ(running.done.get().token_ids.size(), 20u);  // finished within the grace period
  GenerationRequest late;
  late.prompt_ids = Prompt(4, 9);
  EXPECT_EQ(scheduler.Submit(std::move(late)).status().code(), absl::StatusCode::kUnavailable);
}

// Last in the file: on cuda it captures CUDA graphs, the riskiest step on a new GPU stack, so a
// crash there loses no other test's result.
// Decode-only steps through the DecodeGraphRunner (captured as CUDA graphs on cuda; elsewhere
// its static step runs eagerly): every family's requests keep their solo outputs, their
// decode-only steps taking the runner (~14 of ~36 steps here for Llama), and the decode rows of
// steps that also hold prompt chunks too (those split in two).
TEST(SchedulerTest, DecodeGraphsKeepEachSoloOutput) {
  const bool cuda = testing::TestDevice().rfind("cuda", 0) == 0;
  for (const char* name : {"llama-tiny", "t5-tiny", "gpt1-tiny"}) {
    SCOPED_TRACE(name);
    auto model = Load(name);
    SchedulerOptions options;
    options.decode_graphs = cuda ? SchedulerOptions::DecodeGraphs::kAuto
                                 : SchedulerOptions::DecodeGraphs::kEager;
    const SchedulerStats stats = ExpectSoloOutputs(*model, options);
    EXPECT_GT(stats.graph_steps, 0) << stats.steps << " steps";
    // Steps with prompt chunks beside decode rows split: the rows through the runner. T5 has
    // none (its prompt is its encoder's input; every decoder chunk is one token).
    if (std::string(name) == "t5-tiny") {
      EXPECT_EQ(stats.split_steps, 0);
    } else {
      EXPECT_GT(stats.split_steps, 0) << stats.steps << " steps";
    }
    EXPECT_LE(stats.split_steps, stats.graph_steps);
    if (cuda) {
      EXPECT_GT(stats.decode_graphs, 0);
    } else {
      EXPECT_EQ(stats.decode_graphs, 0);
    }
  }
}

}  // namespace
}  // namespace triad
