// ServedModel: one resident model as the service sees it: its serving config, weights,
// tokenizer and scheduler. Created in state kLoading when triadd starts (so health and
// ListModels can report it while it loads), filled once by LoadServedModel, immutable
// afterwards except for `state`.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "model/model.h"
#include "model/tokenizer/tokenizer.h"
#include "server/classify_tasks.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/scheduler.h"

namespace triad {

enum class ServingState { kLoading, kReady, kDraining, kFailed };

struct ServedModel {
  ModelServingConfig config;
  std::unique_ptr<Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<ModelTasks> tasks;  // the Classify tasks it serves (possibly none)
  std::unique_ptr<Scheduler> scheduler;
  std::atomic<ServingState> state{ServingState::kLoading};
  // Set once LoadServedModel has written every member (whatever the outcome); before that only
  // `config` and `state` may be read by other threads.
  std::atomic<bool> load_finished{false};
  std::string error;        // why loading failed
  double load_seconds = 0;  // time LoadServedModel took
};

// Loads weights, tokenizer and tasks into `served` (in state kLoading, `config` set) and starts
// its scheduler, then publishes the result through `state`: kReady, or kFailed with `error`
// set (the server keeps serving the others). Other threads may read the other members only
// after seeing kReady or kFailed. A loaded model reports its batch sizes, load time and
// queue/running/KV gauges to `metrics` (not null; it must outlive the scheduler).
void LoadServedModel(ServedModel& served, Metrics* metrics);

}  // namespace triad
