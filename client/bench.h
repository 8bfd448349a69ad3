// The `triad bench` load generator. Generation mode streams synthetic Generate requests (random
// token-id prompts, fixed or spread output length with ignore_eos; or unary beam searches) and
// reports generated, prompt and total tokens/s, and percentiles of time to first token,
// inter-token latency, time per output token, request latency and the server's queue time.
// Classification mode (a task given) sends synthetic
// Classify (or ClassifyBatch) requests whose texts are pre-tokenized random segments, so their
// lengths are exact, and reports classifications/s, latency percentiles, the server's queue time
// and prompt tokens/s. Both run at a fixed concurrency, closed loop or with Poisson arrivals.
//
// Thread contract: RunBench starts and joins its own worker threads; `client` must be safe to
// call from all of them (TriadClient is).
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
  // Generation: the prompt length. Classification: the length of each text segment (premise
  // and hypothesis, text_a and text_b, the context, or the single text). In tokens, >= 1.
  int prompt_tokens = 32;
  // The first this many prompt tokens (classification: of the first segment) are the same in
  // every request (a shared system prompt or few-shot preamble, what a server's prefix cache
  // is for); 0..prompt_tokens.
  int shared_prefix_tokens = 0;
  int output_tokens = 64;       // generated tokens per request (ignore_eos), >= 1
  // Each request's output length is drawn uniformly from [(1 - spread) x output_tokens,
  // output_tokens], so closed-loop clients do not stay in lockstep; in [0, 1), 0 = fixed.
  double output_spread = 0;
  // Generation: > 1 sends unary Generate requests with beam search of this width (the answer
  // arrives whole, so time to first token is the request's latency and there is no
  // inter-token figure); 1..16.
  int num_beams = 1;
  double rate = 0;              // Poisson arrivals per second; 0 = closed loop
  // Closed loop: worker w sends its first request ramp_up_seconds x w / concurrency after the
  // start (a linear ramp, as load generators stagger their users), so the opening requests do
  // not all arrive at once; >= 0, 0 = all at once. Not used with a rate.
  double ramp_up_seconds = 0;
  uint64_t seed = 1;            // token ids and arrivals
  // Classification mode: "entailment", "similarity", "multiple_choice" or "single" (the
  // ClassifyTask names, lower case); "" = benchmark Generate.
  std::string task;
  int num_choices = 4;    // multiple_choice: choices per item, kMinChoices..kMaxChoices
  int choice_tokens = 8;  // multiple_choice: tokens per choice, >= 1
  // Items per ClassifyBatch call, 0..kMaxBatchItems; 0 = one unary Classify per request.
  int batch_items = 0;

  bool classify() const { return !task.empty(); }
  std::string Validate() const;  // "" when valid, else what is wrong (naming the flag)
};

// Bounds the server enforces (see ClassifyItem / ClassifyBatchRequest in the proto); checked
// here too so that a typo is a usage error rather than a run of failed requests.
inline constexpr int kMinChoices = 2;
inline constexpr int kMaxChoices = 64;
inline constexpr int kMaxBatchItems = 1024;

// Runs the benchmark the options describe against `client`. `vocab_size` is the model's
// (ModelInfo.vocab_size): random ids are drawn below it. The JSON report has the options,
// counts, throughput and latency percentiles in milliseconds (the two modes' keys differ; see
// the .cc).
nlohmann::json RunBench(TriadClient& client, const BenchOptions& options, int64_t vocab_size);

// Either mode's report as a one-screen table.
std::string FormatBenchTable(const nlohmann::json& report);

}  // namespace triad::client
