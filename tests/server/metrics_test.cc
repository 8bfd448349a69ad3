// Metrics (label unit): observations show up in the Prometheus text under the documented
// names, labels and values; no network.
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace triad {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(Metrics, RecordsRequestsAndTheirOutcomes) {
  Metrics metrics("1.2.3", "2.1.0");
  metrics.RecordRequest("llama", "Generate", absl::StatusCode::kOk, 0.2);
  metrics.RecordRequest("llama", "Generate", absl::StatusCode::kOk, 0.3);
  metrics.RecordRequest("llama", "GenerateStream", absl::StatusCode::kCancelled, 0.1);
  metrics.RecordRequest("llama", "Generate", absl::StatusCode::kDeadlineExceeded, 1);
  metrics.RecordRejected("llama", absl::StatusCode::kResourceExhausted);
  const std::string text = metrics.Text();
  EXPECT_TRUE(Has(text, "# TYPE triad_requests_total counter")) << text;
  EXPECT_TRUE(Has(text, R"(triad_requests_total{code="OK",model="llama",rpc="Generate"} 2)"))
      << text;
  EXPECT_TRUE(Has(text, R"(triad_request_duration_seconds_count{model="llama",rpc="Generate"} 3)"));
  EXPECT_TRUE(Has(text, R"(triad_request_duration_seconds_sum{model="llama",rpc="Generate"} 1.5)"));
  EXPECT_TRUE(Has(
      text, R"(triad_request_duration_seconds_bucket{model="llama",rpc="Generate",le="0.25"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_requests_cancelled_total{model="llama"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_requests_deadline_exceeded_total{model="llama"} 1)"));
  EXPECT_TRUE(
      Has(text, R"(triad_requests_rejected_total{model="llama",reason="resource_exhausted"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_build_info{torch="2.1.0",version="1.2.3"} 1)"));
}

TEST(Metrics, RecordsGenerationTimesTokensAndBatches) {
  Metrics metrics("v", "t");
  GenerationSample s;
  s.prompt_tokens = 7;
  s.generated_tokens = 5;
  s.queue_seconds = 0.002;
  s.first_token_seconds = 0.02;
  s.total_seconds = 0.1;  // 4 tokens after the first in 0.08 s: 0.02 s each
  metrics.RecordGeneration("t5", s);
  metrics.RecordGeneration("t5", GenerationSample{3, 0, 0.5, 0, 0.5});  // no token: no TTFT
  metrics.RecordBatch("t5", 3);
  metrics.RecordBatch("t5", 8, "graph");
  metrics.RecordStepDuration("t5", "decode", 0.004);
  metrics.RecordStepDuration("t5", "decode", 0.02);
  metrics.RecordStepDuration("t5", "mixed", 0.07);
  metrics.SetLoadSeconds("t5", 1.25);
  metrics.RecordPreemption("t5");
  metrics.RecordRefillWait("t5", 0.001, "refilled");
  metrics.RecordRefillWait("t5", 0.002, "refilled");
  metrics.RecordRefillWait("t5", 0.003, "timeout");
  metrics.RecordRefillWait("t5", 0.004, "classify");
  metrics.RecordPrefixHit("t5", 32);
  metrics.RecordPrefixHit("t5", 16);
  const std::string text = metrics.Text();
  EXPECT_TRUE(Has(text, R"(triad_prompt_tokens_total{model="t5"} 10)")) << text;
  EXPECT_TRUE(Has(text, R"(triad_generated_tokens_total{model="t5"} 5)"));
  EXPECT_TRUE(Has(text, R"(triad_queue_duration_seconds_count{model="t5"} 2)"));
  EXPECT_TRUE(Has(text, R"(triad_queue_duration_seconds_bucket{model="t5",le="0.0025"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_time_to_first_token_seconds_count{model="t5"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_time_to_first_token_seconds_sum{model="t5"} 0.02)"));
  EXPECT_TRUE(Has(text, R"(triad_time_per_output_token_seconds_count{model="t5"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_time_per_output_token_seconds_bucket{model="t5",le="0.01"} 0)"));
  EXPECT_TRUE(Has(text, R"(triad_time_per_output_token_seconds_bucket{model="t5",le="0.025"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_batch_size_sum{model="t5"} 11)"));
  EXPECT_TRUE(Has(text, R"(triad_batch_size_bucket{model="t5",le="4"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_engine_steps_total{model="t5",path="eager"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_engine_steps_total{model="t5",path="graph"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_engine_step_duration_seconds_count{kind="decode",model="t5"} 2)"));
  EXPECT_TRUE(Has(text, R"(triad_engine_step_duration_seconds_bucket{kind="decode",model="t5",le="0.005"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_engine_step_duration_seconds_sum{kind="mixed",model="t5"} 0.07)"));
  EXPECT_TRUE(Has(text, R"(triad_model_load_seconds{model="t5"} 1.25)"));
  EXPECT_TRUE(Has(text, R"(triad_preemptions_total{model="t5"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_refill_waits_total{model="t5",outcome="refilled"} 2)"));
  EXPECT_TRUE(Has(text, R"(triad_refill_waits_total{model="t5",outcome="timeout"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_refill_wait_seconds_total{model="t5",outcome="refilled"} 0.003)"));
  EXPECT_TRUE(Has(text, R"(triad_refill_wait_seconds_total{model="t5",outcome="timeout"} 0.003)"));
  EXPECT_TRUE(Has(text, R"(triad_refill_waits_total{model="t5",outcome="classify"} 1)"));
  EXPECT_TRUE(Has(text, R"(triad_prefix_cache_hit_tokens_total{model="t5"} 48)"));
}

TEST(Metrics, GaugesAreSampledAtEachCollect) {
  Metrics metrics("v", "t");
  ModelGauges now;
  metrics.AddGaugeSource("llama", [&now] { return now; });
  EXPECT_TRUE(Has(metrics.Text(), R"(triad_queue_depth{model="llama"} 0)"));
  now = {3, 2, 0.5, 35};
  std::string text = metrics.Text();
  EXPECT_TRUE(Has(text, R"(triad_queue_depth{model="llama"} 3)")) << text;
  EXPECT_TRUE(Has(text, R"(triad_running_sequences{model="llama"} 2)"));
  EXPECT_TRUE(Has(text, R"(triad_kv_cache_usage_ratio{model="llama"} 0.5)"));
  EXPECT_TRUE(Has(text, R"(triad_cuda_graphs{model="llama"} 35)"));
  now = {};
  text = metrics.Text();
  EXPECT_TRUE(Has(text, R"(triad_running_sequences{model="llama"} 0)"));
}

}  // namespace
}  // namespace triad
