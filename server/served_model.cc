#include "server/served_model.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace triad {

std::unique_ptr<ServedModel> LoadServedModel(const ModelServingConfig& config) {
  auto served = std::make_unique<ServedModel>();
  served->config = config;
  const auto start = std::chrono::steady_clock::now();
  LoadOptions options;
  options.device = config.device;
  options.dtype = config.dtype;
  auto model = LoadModel(config.path, options);
  if (!model.ok()) {
    served->error = std::string(model.status().message());
    served->state = ServingState::kFailed;
    return served;
  }
  auto tokenizer = tokenizer::Tokenizer::FromDir(config.tokenizer.empty() ? config.path
                                                                         : config.tokenizer);
  if (!tokenizer.ok()) {
    served->error = absl::StrCat("tokenizer: ", tokenizer.status().message());
    served->state = ServingState::kFailed;
    return served;
  }
  served->model = *std::move(model);
  served->tokenizer = *std::move(tokenizer);
  SchedulerOptions scheduling;
  scheduling.max_batch_size = config.max_batch_size;
  scheduling.max_queue = config.max_queue;
  scheduling.kv_budget_bytes = config.kv_budget_mb * (int64_t{1} << 20);
  scheduling.prefill_chunk_tokens = config.prefill_chunk_tokens;
  served->scheduler = std::make_unique<Scheduler>(*served->model, scheduling);
  served->load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  served->state = ServingState::kReady;
  return served;
}

}  // namespace triad
