// The `triad bench` load generator: streams synthetic requests (random token-id prompts,
// fixed output length with ignore_eos) at a fixed concurrency, closed loop or with Poisson
// arrivals, and reports throughput, time to first token and inter-token latency percentiles.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "client/client.h"

namespace triad::client {

struct BenchOptions {
  std::string model;            // required
  int concurrency = 1;          // requests in flight at most, >= 1
  int64_t num_requests = 16;    // total requests; 0 = run for duration_seconds
  double duration_seconds = 0;  // used when num_requests == 0, > 0 then
  int prompt_tokens = 32;       // prompt length in tokens, >= 1
  int output_tokens = 64;       // generated tokens per request (ignore_eos), >= 1
  double rate = 0;              // Poisson arrivals per second; 0 = closed loop
  uint64_t seed = 1;            // prompts and arrivals
  std::string Validate() const; // "" when valid, else what is wrong (naming the flag)
};

// Runs the benchmark against `client`; the JSON report has the options, counts, throughput
// and ttft/itl percentiles in milliseconds.
nlohmann::json RunBench(TriadClient& client, const BenchOptions& options, int64_t vocab_size);

// The report as a one-screen table.
std::string FormatBenchTable(const nlohmann::json& report);

}  // namespace triad::client
