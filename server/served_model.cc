#include "server/served_model.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace triad {

namespace {

// Fills `served`; returns false (with `error` set) when something fails to load.
bool Load(ServedModel* served, Metrics* metrics) {
  const ModelServingConfig& config = served->config;
  const auto start = std::chrono::steady_clock::now();
  LoadOptions options;
  options.device = config.device;
  options.dtype = config.dtype;
  auto model = LoadModel(config.path, options);
  if (!model.ok()) {
    served->error = std::string(model.status().message());
    return false;
  }
  auto tokenizer = tokenizer::Tokenizer::FromDir(config.tokenizer.empty() ? config.path
                                                                         : config.tokenizer);
  if (!tokenizer.ok()) {
    served->error = absl::StrCat("tokenizer: ", tokenizer.status().message());
    return false;
  }
  served->model = *std::move(model);
  served->tokenizer = *std::move(tokenizer);
  auto tasks = ModelTasks::Build(served->model->config(), *served->tokenizer, config.classify,
                                 absl::StrCat("model \"", config.name, "\": classify"));
  if (!tasks.ok()) {
    served->error = std::string(tasks.status().message());
    return false;
  }
  served->tasks = std::make_unique<ModelTasks>(*std::move(tasks));
  SchedulerOptions scheduling;
  scheduling.max_batch_size = config.max_batch_size;
  scheduling.max_queue = config.max_queue;
  scheduling.kv_budget_bytes = config.kv_budget_mb * (int64_t{1} << 20);
  scheduling.kv_block_size = config.kv_block_size;
  scheduling.prefix_caching = config.prefix_caching;
  scheduling.decode_graphs = config.cuda_graphs ? SchedulerOptions::DecodeGraphs::kAuto
                                                : SchedulerOptions::DecodeGraphs::kOff;
  scheduling.prefill_chunk_tokens = config.prefill_chunk_tokens;
  scheduling.max_scoring_batch = config.max_classify_batch;
  scheduling.batch_window = std::chrono::milliseconds(config.batch_window_ms);
  scheduling.admission_window = std::chrono::milliseconds(config.admission_window_ms);
  scheduling.refill_window = std::chrono::milliseconds(config.refill_window_ms);
  scheduling.on_step = [metrics, name = config.name](const StepInfo& step) {
    metrics->RecordBatch(name, step.batch_size,
                         step.path == StepPath::kRunner  ? "graph"
                         : step.path == StepPath::kSplit ? "split"
                                                         : "eager");
    metrics->RecordStepDuration(name,
                                step.prompt_tokens == 0  ? "decode"
                                : step.decode_rows == 0 ? "prefill"
                                                        : "mixed",
                                step.forward_seconds);
  };
  scheduling.on_scoring_batch = [metrics, name = config.name](int64_t items) {
    metrics->RecordScoringBatch(name, items);
  };
  scheduling.on_refill_wait = [metrics, name = config.name](double seconds,
                                                           RefillOutcome outcome) {
    metrics->RecordRefillWait(name, seconds,
                              outcome == RefillOutcome::kRefilled  ? "refilled"
                              : outcome == RefillOutcome::kTimeout ? "timeout"
                                                                   : "classify");
  };
  scheduling.on_preempt = [metrics, name = config.name] { metrics->RecordPreemption(name); };
  scheduling.on_prefix_hit = [metrics, name = config.name](int64_t positions) {
    metrics->RecordPrefixHit(name, positions);
  };
  served->scheduler = std::make_unique<Scheduler>(*served->model, scheduling);
  if (!served->scheduler->status().ok()) {
    served->error = absl::StrCat("kv_budget_mb: ", served->scheduler->status().message());
    served->scheduler.reset();
    return false;
  }
  served->load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics->SetLoadSeconds(config.name, served->load_seconds);
  const Scheduler* scheduler = served->scheduler.get();
  metrics->AddGaugeSource(config.name, [scheduler] {
    const SchedulerStats stats = scheduler->stats();
    ModelGauges gauges;
    gauges.queued = stats.queued;
    gauges.running = stats.running;
    gauges.kv_usage_ratio = stats.kv_capacity_bytes > 0
                                ? static_cast<double>(stats.kv_used_bytes) /
                                      static_cast<double>(stats.kv_capacity_bytes)
                                : 0;
    gauges.cuda_graphs = stats.decode_graphs;
    return gauges;
  });
  return true;
}

}  // namespace

void LoadServedModel(ServedModel& served, Metrics* metrics) {
  const ServingState outcome = Load(&served, metrics) ? ServingState::kReady : ServingState::kFailed;
  // Publishes every member written above; a model that started draining while it loaded stays
  // draining.
  served.load_finished = true;
  ServingState expected = ServingState::kLoading;
  served.state.compare_exchange_strong(expected, outcome);
}

}  // namespace triad
