// Metrics: triadd's Prometheus metrics (names, labels, buckets), the one object every part of
// the daemon records into, and MetricsHttpServer, which serves them on GET /metrics. No gRPC
// and no LibTorch: the service and the model wiring convert their outcomes to the plain values
// taken here. `Collect()` refreshes the per-model gauges from their sources and returns every
// family (a prometheus::Collectable; tests serialize it through Text()).
//
// Thread contract: every Metrics method is thread-safe. Record* calls take a short mutex inside
// prometheus-cpp and never block on anything slow, so gRPC and scheduler loop threads may call
// them. Gauge sources run on the scraping thread and must be cheap (Scheduler::stats()).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace triad {

// One finished generation as the scheduler reports it.
struct GenerationSample {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double queue_seconds = 0;        // submit -> admitted
  double first_token_seconds = 0;  // submit -> first token; ignored when no token came
  double total_seconds = 0;        // submit -> finished
};

// A model's load-dependent gauges, sampled at scrape time.
struct ModelGauges {
  int64_t queued = 0;           // requests waiting for admission
  int64_t running = 0;          // sequences in the running batch
  double kv_usage_ratio = 0;    // KV pool blocks in use / the pool's blocks
  int64_t cuda_graphs = 0;      // decode-step buckets captured as CUDA graphs
};

class Metrics final : public prometheus::Collectable {
 public:
  // `version` and `torch_version` label triad_build_info.
  Metrics(const std::string& version, const std::string& torch_version);

  // A finished RPC: triad_requests_total{model,rpc,code} and
  // triad_request_duration_seconds{model,rpc}; CANCELLED and DEADLINE_EXCEEDED also count in
  // triad_requests_cancelled_total / triad_requests_deadline_exceeded_total. `model` is ""
  // for calls that name no served model (so clients cannot grow the label set).
  void RecordRequest(const std::string& model, const std::string& rpc, absl::StatusCode code,
                     double seconds);
  // A generation refused before it ran (bad input, full queue, KV budget, shutting down):
  // triad_requests_rejected_total{model,reason}, reason = the lower-case status code name.
  void RecordRejected(const std::string& model, absl::StatusCode code);
  // Queue, first-token and per-output-token times and the token counters of one generation.
  void RecordGeneration(const std::string& model, const GenerationSample& sample);
  // A finished classification: its input tokens (triad_prompt_tokens_total) and queue time.
  void RecordClassification(const std::string& model, int64_t prompt_tokens, double queue_seconds);
  // Items in one scoring batch (triad_classify_batch_items).
  void RecordScoringBatch(const std::string& model, int64_t items);
  // One scheduler step: its sequences (triad_batch_size) and how it ran
  // (triad_engine_steps_total{model,path}): "eager" (no CUDA graph), "graph" (every row
  // replayed from CUDA graphs) or "split" (decode rows from graphs, prompt chunks eagerly).
  void RecordBatch(const std::string& model, int64_t batch_size, const std::string& path = "eager");
  // One scheduler step's forward, logits on the host (triad_engine_step_duration_seconds
  // {model,kind}): kind "decode" (one token per sequence), "prefill" (prompt chunks only) or
  // "mixed" (prompt chunks beside decoding sequences).
  void RecordStepDuration(const std::string& model, const std::string& kind, double seconds);
  // A step that waited for the refill window (triad_refill_waits_total{model,outcome} and
  // triad_refill_wait_seconds_total{model,outcome}; outcome "refilled" when the newcomers came,
  // "timeout" when the window ran out, "classify" when a Classify batch was ready first).
  void RecordRefillWait(const std::string& model, double seconds, const std::string& outcome);
  // A running sequence preempted for lack of KV blocks (triad_preemptions_total).
  void RecordPreemption(const std::string& model);
  // Prompt positions taken from the prefix cache instead of computed
  // (triad_prefix_cache_hit_tokens_total).
  void RecordPrefixHit(const std::string& model, int64_t positions);
  void SetLoadSeconds(const std::string& model, double seconds);
  // Registers the source of `model`'s gauges, called at every Collect().
  void AddGaugeSource(const std::string& model, std::function<ModelGauges()> source);

  std::vector<prometheus::MetricFamily> Collect() const override;
  // Collect() in the Prometheus text format.
  std::string Text() const;

 private:
  struct Source {
    std::string model;
    std::function<ModelGauges()> gauges;
  };

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_seconds_;
  prometheus::Family<prometheus::Histogram>& queue_seconds_;
  prometheus::Family<prometheus::Histogram>& first_token_seconds_;
  prometheus::Family<prometheus::Histogram>& token_seconds_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Counter>& engine_steps_;
  prometheus::Family<prometheus::Histogram>& step_seconds_;
  prometheus::Family<prometheus::Histogram>& scoring_batch_items_;
  prometheus::Family<prometheus::Counter>& prompt_tokens_;
  prometheus::Family<prometheus::Counter>& generated_tokens_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& cancelled_;
  prometheus::Family<prometheus::Counter>& deadline_exceeded_;
  prometheus::Family<prometheus::Counter>& preemptions_;
  prometheus::Family<prometheus::Counter>& refill_waits_;
  prometheus::Family<prometheus::Counter>& refill_wait_seconds_;
  prometheus::Family<prometheus::Counter>& prefix_hits_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& running_;
  prometheus::Family<prometheus::Gauge>& kv_usage_;
  prometheus::Family<prometheus::Gauge>& cuda_graphs_;
  prometheus::Family<prometheus::Gauge>& load_seconds_;

  mutable std::mutex mu_;
  std::vector<Source> sources_;  // guarded by mu_
};

// A minimal HTTP/1.x server for GET /metrics (anything else is 404), one connection at a time
// on its own thread. Why not prometheus-cpp's Exposer: its civetweb cannot start its threads
// once LibTorch is loaded in the process ("Cannot create threads: error 0", seen with Debian's
// libtorch 1.13 and civetweb), so triadd serves the same text format itself.
//
// Thread contract: Start and the destructor from one thread; scrapes run on the server thread.
class MetricsHttpServer {
 public:
  // Listens on `host`:`port` (host as in the gRPC listen address; IPv6 in brackets).
  // UNAVAILABLE naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host, int port, std::shared_ptr<const Metrics> metrics);
  ~MetricsHttpServer();  // stops listening and joins the thread
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

 private:
  MetricsHttpServer(int fd, std::shared_ptr<const Metrics> metrics);
  void Serve();
  void Answer(int connection) const;

  const int fd_;
  const std::shared_ptr<const Metrics> metrics_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace triad
