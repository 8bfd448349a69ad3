#include "client/bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace triad::client {
namespace {

using Clock = std::chrono::steady_clock;

// One request of the schedule: draws its ids from the worker's `rng`; `due` is its arrival
// time (queueing in the client counts towards its latency); `opening` marks a closed-loop
// worker's first request, which arrives with every other worker's at the start (a burst).
using RequestFn =
    std::function<void(std::mt19937_64& rng, Clock::time_point due, bool opening)>;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5));
  return v[i];
}

nlohmann::json Percentiles(const std::vector<double>& v) {
  return {{"p50", Percentile(v, 50)}, {"p90", Percentile(v, 90)}, {"p99", Percentile(v, 99)},
          {"count", v.size()}};
}

Clock::duration After(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Runs `one` for every request the options ask for on o.concurrency workers: closed loop
// (each due when a worker is free, worker w's first after w / concurrency of the ramp-up) or
// Poisson arrivals at o.rate from the start; until o.num_requests are done or
// o.duration_seconds have passed. Returns the wall seconds (the ramp-up included).
double RunSchedule(const BenchOptions& o, const RequestFn& one) {
  std::atomic<int64_t> next{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_at = start + After(o.duration_seconds);
  std::mt19937_64 arrival_rng(o.seed);
  std::exponential_distribution<double> gap(o.rate > 0 ? o.rate : 1.0);
  std::vector<double> arrivals;  // seconds after start, for the Poisson mode
  const int64_t planned = o.num_requests > 0 ? o.num_requests : int64_t{1} << 40;
  if (o.rate > 0) {
    double t = 0;
    for (int64_t i = 0; i < std::min<int64_t>(planned, 1'000'000); ++i) {
      arrivals.push_back(t += gap(arrival_rng));
    }
  }
  auto worker = [&](int w) {
    std::mt19937_64 rng(o.seed * 7919 + static_cast<uint64_t>(w));
    if (o.rate <= 0 && o.ramp_up_seconds > 0) {
      std::this_thread::sleep_until(start + After(o.ramp_up_seconds * w / o.concurrency));
    }
    for (bool opening = o.rate <= 0;; opening = false) {
      const int64_t i = next.fetch_add(1);
      if (i >= planned || (o.rate > 0 && i >= static_cast<int64_t>(arrivals.size()))) return;
      Clock::time_point due = Clock::now();
      if (o.rate > 0) {
        due = start + After(arrivals[i]);
        std::this_thread::sleep_until(due);
      }
      if (o.num_requests == 0 && Clock::now() >= stop_at) return;
      one(rng, due, opening);
    }
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < o.concurrency; ++w) workers.emplace_back(worker, w);
  for (std::thread& t : workers) t.join();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// --- Generation ---------------------------------------------------------------------------

// What every worker records about its calls, guarded by `mu`.
struct Tally {
  std::mutex mu;
  int64_t ok = 0, errors = 0;
  std::string first_error;
  // Counts one finished call (the caller holds mu); true when it succeeded.
  bool CountLocked(const grpc::Status& status) {
    if (status.ok()) {
      ++ok;
    } else if (++errors == 1) {
      first_error = status.error_message();
    }
    return status.ok();
  }
};

// What all generation workers record.
struct Results : Tally {
  std::vector<double> ttft_ms, itl_ms;
  std::vector<double> steady_ttft_ms;  // closed loop: without each worker's opening request
  std::vector<double> latency_ms;      // due -> the last message
  // Per streamed request of 2+ tokens: (latency - TTFT) / (tokens - 1), the decode speed one
  // client sees (vLLM's TPOT), where ITL is per gap.
  std::vector<double> tpot_ms;
  std::vector<double> queue_ms;        // the server's timings.queue_seconds
  int64_t generated = 0;
  int64_t prompt_tokens = 0;  // the server's usage.prompt_tokens
  int64_t cached_prompt_tokens = 0;  // usage.cached_prompt_tokens (the prefix cache's part)

  // Records a succeeded request's server-side usage and timings (the caller holds mu).
  void CountUsageLocked(const v1::Usage& usage, const v1::Timings& timings) {
    prompt_tokens += usage.prompt_tokens();
    cached_prompt_tokens += usage.cached_prompt_tokens();
    queue_ms.push_back(timings.queue_seconds() * 1e3);
  }
};

std::uniform_int_distribution<int32_t> PromptIds(int64_t vocab) {
  return std::uniform_int_distribution<int32_t>(3, static_cast<int32_t>(vocab - 1));
}

// The --shared-prefix ids every request starts with, drawn once from `id`.
std::vector<int32_t> SharedPrefix(const BenchOptions& o, std::uniform_int_distribution<int32_t> id) {
  std::mt19937_64 rng(o.seed ^ 0x5eedu);
  std::vector<int32_t> ids(static_cast<size_t>(o.shared_prefix_tokens));
  for (int32_t& t : ids) t = id(rng);
  return ids;
}

// `prefix` (the shared prefix), then random ids up to o.prompt_tokens.
v1::GenerateRequest MakeRequest(const BenchOptions& o, int64_t vocab,
                                const std::vector<int32_t>& prefix, std::mt19937_64& rng) {
  v1::GenerateRequest r;
  r.set_model(o.model);
  auto id = PromptIds(vocab);
  r.mutable_token_ids()->mutable_ids()->Add(prefix.begin(), prefix.end());
  for (int i = static_cast<int>(prefix.size()); i < o.prompt_tokens; ++i) {
    r.mutable_token_ids()->add_ids(id(rng));
  }
  r.mutable_sampling()->set_temperature(0);
  const int shortest = static_cast<int>(std::lround((1 - o.output_spread) * o.output_tokens));
  r.mutable_sampling()->set_max_new_tokens(
      std::uniform_int_distribution<int>(std::max(1, shortest), o.output_tokens)(rng));
  r.mutable_sampling()->set_ignore_eos(true);
  if (o.num_beams > 1) r.mutable_sampling()->set_num_beams(static_cast<uint32_t>(o.num_beams));
  return r;
}

// Sends one unary request that was due at `due` (beam search: the whole answer at once).
void RunOneUnary(TriadClient& client, const v1::GenerateRequest& request, Clock::time_point due,
                 bool opening, Results& results) {
  v1::GenerateResponse response;
  const grpc::Status status = client.Generate(request, &response, std::chrono::minutes(10));
  const double latency = Ms(Clock::now() - due);
  std::lock_guard<std::mutex> lock(results.mu);
  if (!results.CountLocked(status)) return;
  results.generated += response.token_ids_size();
  results.CountUsageLocked(response.usage(), response.timings());
  results.ttft_ms.push_back(latency);
  results.latency_ms.push_back(latency);
  if (!opening) results.steady_ttft_ms.push_back(latency);
}

// Streams one request that was due at `due`.
void RunOne(TriadClient& client, const v1::GenerateRequest& request, Clock::time_point due,
            bool opening, Results& results) {
  std::vector<double> itl;
  double ttft = -1;
  int64_t tokens = 0;
  Clock::time_point last = due;
  v1::Usage usage;
  v1::Timings timings;
  const grpc::Status status = client.GenerateStream(
      request,
      [&](const v1::GenerateStreamResponse& m) {
        if (m.has_usage()) usage = m.usage();  // the final message
        if (m.has_timings()) timings = m.timings();
        if (m.token_ids_size() == 0) return;
        const Clock::time_point now = Clock::now();
        if (ttft < 0) {
          ttft = Ms(now - due);
        } else {
          for (int k = 0; k < m.token_ids_size(); ++k) itl.push_back(Ms(now - last) / m.token_ids_size());
        }
        tokens += m.token_ids_size();
        last = now;
      },
      std::chrono::minutes(10));
  const double latency = Ms(Clock::now() - due);
  std::lock_guard<std::mutex> lock(results.mu);
  if (!results.CountLocked(status)) return;
  results.generated += tokens;
  results.CountUsageLocked(usage, timings);
  results.latency_ms.push_back(latency);
  if (ttft >= 0) results.ttft_ms.push_back(ttft);
  if (ttft >= 0 && !opening) results.steady_ttft_ms.push_back(ttft);
  if (ttft >= 0 && tokens > 1) results.tpot_ms.push_back((Ms(last - due) - ttft) / (tokens - 1));
  results.itl_ms.insert(results.itl_ms.end(), itl.begin(), itl.end());
}

// The keys both modes report.
nlohmann::json CommonReport(const BenchOptions& o, const Tally& tally, double wall) {
  return {{"model", o.model},
          {"concurrency", o.concurrency},
          {"rate", o.rate},
          {"ramp_up_seconds", o.ramp_up_seconds},
          {"prompt_tokens", o.prompt_tokens},
          {"requests_ok", tally.ok},
          {"requests_failed", tally.errors},
          {"first_error", tally.first_error},
          {"wall_seconds", wall},
          {"requests_per_s", static_cast<double>(tally.ok) / wall}};
}

nlohmann::json RunGenerateBench(TriadClient& client, const BenchOptions& o, int64_t vocab_size) {
  Results results;
  const std::vector<int32_t> prefix = SharedPrefix(o, PromptIds(vocab_size));
  const double wall =
      RunSchedule(o, [&](std::mt19937_64& rng, Clock::time_point due, bool opening) {
        const v1::GenerateRequest request = MakeRequest(o, vocab_size, prefix, rng);
        if (o.num_beams > 1) {
          RunOneUnary(client, request, due, opening, results);
        } else {
          RunOne(client, request, due, opening, results);
        }
      });
  nlohmann::json report = CommonReport(o, results, wall);
  report.update({{"shared_prefix_tokens", o.shared_prefix_tokens},
                 {"output_tokens", o.output_tokens},
                 {"output_spread", o.output_spread},
                 {"num_beams", o.num_beams},
                 {"generated_tokens", results.generated},
                 {"generated_tokens_per_s", results.generated / wall},
                 {"total_prompt_tokens", results.prompt_tokens},
                 {"cached_prompt_tokens", results.cached_prompt_tokens},
                 {"prompt_tokens_per_s", results.prompt_tokens / wall},
                 {"total_tokens_per_s", (results.prompt_tokens + results.generated) / wall},
                 {"ttft_ms", Percentiles(results.ttft_ms)},
                 {"steady_ttft_ms", Percentiles(results.steady_ttft_ms)},
                 {"itl_ms", Percentiles(results.itl_ms)},
                 {"tpot_ms", Percentiles(results.tpot_ms)},
                 {"latency_ms", Percentiles(results.latency_ms)},
                 {"server_queue_ms", Percentiles(results.queue_ms)}});
  return report;
}

// One table row: `name`, then the p50 / p90 / p99 of the percentiles object `p`.
std::string PercentileRow(const char* name, const nlohmann::json& p) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%-22s %10.1f %10.1f %10.1f\n", name, p["p50"].get<double>(),
                p["p90"].get<double>(), p["p99"].get<double>());
  return buf;
}

std::string FormatGenerateTable(const nlohmann::json& r) {
  char head[512];
  std::snprintf(head, sizeof(head),
                "model %s  concurrency %d  rate %.2f/s  prompt %d  output %d\n"
                "requests ok %lld  failed %lld  wall %.2f s  %.2f req/s\n"
                "tokens/s: %.1f generated  %.1f prompt (%lld of %lld from the prefix cache)  "
                "%.1f total\n"
                "%-22s %10s %10s %10s\n",
                r["model"].get<std::string>().c_str(), r["concurrency"].get<int>(),
                r["rate"].get<double>(), r["prompt_tokens"].get<int>(),
                r["output_tokens"].get<int>(), static_cast<long long>(r["requests_ok"].get<int64_t>()),
                static_cast<long long>(r["requests_failed"].get<int64_t>()),
                r["wall_seconds"].get<double>(), r["requests_per_s"].get<double>(),
                r["generated_tokens_per_s"].get<double>(), r["prompt_tokens_per_s"].get<double>(),
                static_cast<long long>(r["cached_prompt_tokens"].get<int64_t>()),
                static_cast<long long>(r["total_prompt_tokens"].get<int64_t>()),
                r["total_tokens_per_s"].get<double>(), "latency (ms)", "p50", "p90", "p99");
  return head + PercentileRow("time to first token", r["ttft_ms"]) +
         PercentileRow("  after the opening", r["steady_ttft_ms"]) +
         PercentileRow("inter-token", r["itl_ms"]) +
         PercentileRow("per output token", r["tpot_ms"]) +
         PercentileRow("request", r["latency_ms"]) +
         PercentileRow("server queue", r["server_queue_ms"]);
}

// --- Classification -----------------------------------------------------------------------

// What all classification workers record.
struct ClassifyResults : Tally {
  std::vector<double> latency_ms;
  int64_t items = 0;          // classified items (a batch call counts each)
  int64_t prompt_tokens = 0;  // the server's usage.prompt_tokens
  double queue_seconds = 0;   // sum of the server's timings.queue_seconds
};

void AddRandomIds(int n, std::uniform_int_distribution<int32_t>& id, std::mt19937_64& rng,
                  v1::TokenIds* out) {
  for (int i = 0; i < n; ++i) out->add_ids(id(rng));
}

// One item of random segments in the task's order (see ClassifyItem.segment_ids); the first
// starts with `prefix` (--shared-prefix).
v1::ClassifyItem MakeItem(const BenchOptions& o, v1::ClassifyTask task,
                          const std::vector<int32_t>& prefix,
                          std::uniform_int_distribution<int32_t>& id, std::mt19937_64& rng) {
  v1::ClassifyItem item;
  const bool pair = task == v1::CLASSIFY_TASK_ENTAILMENT || task == v1::CLASSIFY_TASK_SIMILARITY;
  for (int s = 0; s < (pair ? 2 : 1); ++s) {
    v1::TokenIds* segment = item.add_segment_ids();
    if (s == 0) segment->mutable_ids()->Add(prefix.begin(), prefix.end());
    AddRandomIds(o.prompt_tokens - (s == 0 ? static_cast<int>(prefix.size()) : 0), id, rng,
                 segment);
  }
  if (task == v1::CLASSIFY_TASK_MULTIPLE_CHOICE) {
    for (int c = 0; c < o.num_choices; ++c) {
      AddRandomIds(o.choice_tokens, id, rng, item.add_choice_ids());
    }
  }
  return item;
}

// Adds one finished call to `results`.
void Record(const grpc::Status& status, Clock::time_point due, int64_t items,
            const v1::Usage& usage, const v1::Timings& timings, ClassifyResults& results) {
  const double latency = Ms(Clock::now() - due);
  std::lock_guard<std::mutex> lock(results.mu);
  if (!results.CountLocked(status)) return;
  results.items += items;
  results.prompt_tokens += usage.prompt_tokens();
  results.queue_seconds += timings.queue_seconds();
  results.latency_ms.push_back(latency);
}

// Sends one Classify, or one ClassifyBatch of o.batch_items items, due at `due`.
void ClassifyOne(TriadClient& client, const BenchOptions& o, v1::ClassifyTask task,
                 const std::vector<int32_t>& prefix,
                 std::uniform_int_distribution<int32_t>& id, std::mt19937_64& rng,
                 Clock::time_point due, ClassifyResults& results) {
  constexpr auto kTimeout = std::chrono::minutes(10);
  if (o.batch_items == 0) {
    v1::ClassifyRequest request;
    request.set_model(o.model);
    request.set_task(task);
    *request.mutable_item() = MakeItem(o, task, prefix, id, rng);
    v1::ClassifyResponse response;
    const grpc::Status status = client.Classify(request, &response, kTimeout);
    Record(status, due, 1, response.usage(), response.timings(), results);
    return;
  }
  v1::ClassifyBatchRequest request;
  request.set_model(o.model);
  request.set_task(task);
  for (int i = 0; i < o.batch_items; ++i) {
    *request.add_items() = MakeItem(o, task, prefix, id, rng);
  }
  v1::ClassifyBatchResponse response;
  const grpc::Status status = client.ClassifyBatch(request, &response, kTimeout);
  Record(status, due, o.batch_items, response.usage(), response.timings(), results);
}

nlohmann::json RunClassifyBench(TriadClient& client, const BenchOptions& o, int64_t vocab_size) {
  v1::ClassifyTask task = v1::CLASSIFY_TASK_UNSPECIFIED;
  ParseClassifyTask(o.task, &task);  // Validate() accepted the name
  // [3, vocab - 3): small vocabularies keep special tokens at both ends.
  const int32_t high = static_cast<int32_t>(std::max<int64_t>(3, vocab_size - 4));
  ClassifyResults results;
  const std::vector<int32_t> prefix =
      SharedPrefix(o, std::uniform_int_distribution<int32_t>(3, high));
  const double wall = RunSchedule(o, [&](std::mt19937_64& rng, Clock::time_point due, bool) {
    std::uniform_int_distribution<int32_t> id(3, high);
    ClassifyOne(client, o, task, prefix, id, rng, due, results);
  });
  nlohmann::json report = CommonReport(o, results, wall);
  report.update({
      {"task", o.task},
      {"requests", o.num_requests},
      {"duration_seconds", o.duration_seconds},
      {"seed", o.seed},
      {"batch_items", o.batch_items},
      {"shared_prefix_tokens", o.shared_prefix_tokens},
      {"classifications_per_second", results.items / wall},
      {"latency_ms", Percentiles(results.latency_ms)},
      {"server_queue_ms_mean", results.ok > 0 ? 1000 * results.queue_seconds / results.ok : 0.0},
      {"prompt_tokens_per_s", results.prompt_tokens / wall}});
  if (task == v1::CLASSIFY_TASK_MULTIPLE_CHOICE) {
    report["choices"] = o.num_choices;
    report["choice_tokens"] = o.choice_tokens;
  }
  return report;
}

std::string FormatClassifyTable(const nlohmann::json& r) {
  char choices[64] = "";
  if (r.contains("choices")) {
    std::snprintf(choices, sizeof(choices), "  choices %d x %d tokens", r["choices"].get<int>(),
                  r["choice_tokens"].get<int>());
  }
  char buf[1024];
  std::snprintf(
      buf, sizeof(buf),
      "model %s  task %s  concurrency %d  rate %.2f/s  segment %d tokens%s  batch items %d\n"
      "requests ok %lld  failed %lld  wall %.2f s  %.2f req/s  %.1f classifications/s  "
      "%.0f prompt tok/s\n"
      "%-22s %10s %10s %10s\n",
      r["model"].get<std::string>().c_str(), r["task"].get<std::string>().c_str(),
      r["concurrency"].get<int>(), r["rate"].get<double>(), r["prompt_tokens"].get<int>(), choices,
      r["batch_items"].get<int>(), static_cast<long long>(r["requests_ok"].get<int64_t>()),
      static_cast<long long>(r["requests_failed"].get<int64_t>()), r["wall_seconds"].get<double>(),
      r["requests_per_s"].get<double>(), r["classifications_per_second"].get<double>(),
      r["prompt_tokens_per_s"].get<double>(), "latency (ms)", "p50", "p90", "p99");
  char queue[64];
  std::snprintf(queue, sizeof(queue), "%-22s %10.1f\n", "server queue (mean)",
                r["server_queue_ms_mean"].get<double>());
  return buf + PercentileRow("request", r["latency_ms"]) + queue;
}

}  // namespace

std::string BenchOptions::Validate() const {
  if (model.empty()) return "--model is required";
  if (concurrency < 1) return "--concurrency must be >= 1";
  if (num_requests < 0) return "--requests must be >= 0";
  if (num_requests == 0 && !(duration_seconds > 0)) {
    return "--duration must be > 0 with --requests 0";
  }
  if (prompt_tokens < 1) return "--prompt-tokens must be >= 1";
  if (shared_prefix_tokens < 0 || shared_prefix_tokens > prompt_tokens) {
    return "--shared-prefix must be in [0, --prompt-tokens]";
  }
  if (output_tokens < 1) return "--output-tokens must be >= 1";
  if (!(output_spread >= 0 && output_spread < 1)) return "--output-spread must be in [0, 1)";
  if (rate < 0) return "--rate must be >= 0";
  if (!(ramp_up_seconds >= 0)) return "--ramp-up must be >= 0";
  if (ramp_up_seconds > 0 && rate > 0) {
    return "--ramp-up staggers the closed loop's clients; it is not used with --rate";
  }
  if (num_beams < 1 || num_beams > 16) return "--num-beams must be in [1, 16]";
  if (num_beams > 1 && classify()) return "--num-beams is not used with --task";
  v1::ClassifyTask parsed;
  if (classify() && !ParseClassifyTask(task, &parsed)) {
    return "--task: unknown task \"" + task +
           "\" (entailment, similarity, multiple_choice, single)";
  }
  if (num_choices < kMinChoices || num_choices > kMaxChoices) {
    return "--choices must be in [" + std::to_string(kMinChoices) + ", " +
           std::to_string(kMaxChoices) + "]";
  }
  if (choice_tokens < 1) return "--choice-tokens must be >= 1";
  if (batch_items < 0 || batch_items > kMaxBatchItems) {
    return "--batch-items must be in [0, " + std::to_string(kMaxBatchItems) + "]";
  }
  if (batch_items > 0 && !classify()) return "--batch-items needs --task";
  return "";
}

nlohmann::json RunBench(TriadClient& client, const BenchOptions& o, int64_t vocab_size) {
  return o.classify() ? RunClassifyBench(client, o, vocab_size)
                      : RunGenerateBench(client, o, vocab_size);
}

std::string FormatBenchTable(const nlohmann::json& report) {
  return report.contains("task") ? FormatClassifyTable(report) : FormatGenerateTable(report);
}

}  // namespace triad::client
