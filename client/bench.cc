#include "client/bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace triad::client {
namespace {

using Clock = std::chrono::steady_clock;

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

// What all workers record.
struct Results {
  std::mutex mu;
  std::vector<double> ttft_ms, itl_ms;
  int64_t ok = 0, errors = 0, generated = 0;
  std::string first_error;
};

v1::GenerateRequest MakeRequest(const BenchOptions& o, int64_t vocab, std::mt19937_64& rng) {
  v1::GenerateRequest r;
  r.set_model(o.model);
  std::uniform_int_distribution<int32_t> id(3, static_cast<int32_t>(vocab - 1));
  for (int i = 0; i < o.prompt_tokens; ++i) r.mutable_token_ids()->add_ids(id(rng));
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_max_new_tokens(o.output_tokens);
  r.mutable_sampling()->set_ignore_eos(true);
  return r;
}

// Streams one request that was due at `due` (arrival time; queueing in the client counts).
void RunOne(TriadClient& client, const v1::GenerateRequest& request, Clock::time_point due,
            Results& results) {
  std::vector<double> itl;
  double ttft = -1;
  int64_t tokens = 0;
  Clock::time_point last = due;
  const grpc::Status status = client.GenerateStream(
      request,
      [&](const v1::GenerateStreamResponse& m) {
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
  std::lock_guard<std::mutex> lock(results.mu);
  if (!status.ok()) {
    ++results.errors;
    if (results.first_error.empty()) results.first_error = status.error_message();
    return;
  }
  ++results.ok;
  results.generated += tokens;
  if (ttft >= 0) results.ttft_ms.push_back(ttft);
  results.itl_ms.insert(results.itl_ms.end(), itl.begin(), itl.end());
}

}  // namespace

std::string BenchOptions::Validate() const {
  if (model.empty()) return "--model is required";
  if (concurrency < 1) return "--concurrency must be >= 1";
  if (num_requests < 0) return "--requests must be >= 0";
  if (num_requests == 0 && !(duration_seconds > 0)) return "--duration must be > 0 with --requests 0";
  if (prompt_tokens < 1) return "--prompt-tokens must be >= 1";
  if (output_tokens < 1) return "--output-tokens must be >= 1";
  if (rate < 0) return "--rate must be >= 0";
  return "";
}

nlohmann::json RunBench(TriadClient& client, const BenchOptions& o, int64_t vocab_size) {
  Results results;
  std::atomic<int64_t> next{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_at =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_seconds));
  // Arrival times: closed loop (due when a worker is free) or Poisson from the start.
  std::mt19937_64 arrival_rng(o.seed);
  std::exponential_distribution<double> gap(o.rate > 0 ? o.rate : 1.0);
  std::vector<double> arrivals;  // seconds after start, for the Poisson mode
  const int64_t planned = o.num_requests > 0 ? o.num_requests : int64_t{1} << 40;
  if (o.rate > 0) {
    double t = 0;
    for (int64_t i = 0; i < std::min<int64_t>(planned, 1'000'000); ++i) arrivals.push_back(t += gap(arrival_rng));
  }
  auto worker = [&](int w) {
    std::mt19937_64 rng(o.seed * 7919 + static_cast<uint64_t>(w));
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= planned || (o.rate > 0 && i >= static_cast<int64_t>(arrivals.size()))) return;
      Clock::time_point due = Clock::now();
      if (o.rate > 0) {
        due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(arrivals[i]));
        std::this_thread::sleep_until(due);
      }
      if (o.num_requests == 0 && Clock::now() >= stop_at) return;
      RunOne(client, MakeRequest(o, vocab_size, rng), due, results);
    }
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < o.concurrency; ++w) workers.emplace_back(worker, w);
  for (std::thread& t : workers) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  return {{"model", o.model},
          {"concurrency", o.concurrency},
          {"rate", o.rate},
          {"prompt_tokens", o.prompt_tokens},
          {"output_tokens", o.output_tokens},
          {"requests_ok", results.ok},
          {"requests_failed", results.errors},
          {"first_error", results.first_error},
          {"wall_seconds", wall},
          {"requests_per_s", results.ok / wall},
          {"generated_tokens_per_s", results.generated / wall},
          {"ttft_ms", Percentiles(results.ttft_ms)},
          {"itl_ms", Percentiles(results.itl_ms)}};
}

std::string FormatBenchTable(const nlohmann::json& r) {
  char buf[1024];
  std::snprintf(buf, sizeof(buf),
                "model %s  concurrency %d  rate %.2f/s  prompt %d  output %d\n"
                "requests ok %lld  failed %lld  wall %.2f s  %.2f req/s  %.1f generated tok/s\n"
                "%-22s %10s %10s %10s\n%-22s %10.1f %10.1f %10.1f\n%-22s %10.1f %10.1f %10.1f\n",
                r["model"].get<std::string>().c_str(), r["concurrency"].get<int>(),
                r["rate"].get<double>(), r["prompt_tokens"].get<int>(),
                r["output_tokens"].get<int>(), static_cast<long long>(r["requests_ok"].get<int64_t>()),
                static_cast<long long>(r["requests_failed"].get<int64_t>()),
                r["wall_seconds"].get<double>(), r["requests_per_s"].get<double>(),
                r["generated_tokens_per_s"].get<double>(), "latency (ms)", "p50", "p90", "p99",
                "time to first token", r["ttft_ms"]["p50"].get<double>(),
                r["ttft_ms"]["p90"].get<double>(), r["ttft_ms"]["p99"].get<double>(),
                "inter-token", r["itl_ms"]["p50"].get<double>(), r["itl_ms"]["p90"].get<double>(),
                r["itl_ms"]["p99"].get<double>());
  return buf;
}

}  // namespace triad::client
