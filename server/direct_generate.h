// Beam search, which the scheduler loop does not serve (it reorders whole beams): each request
// runs on a thread of its own against the same immutable weights, so neither a gRPC thread
// nor the scheduler loop waits for it. Deterministic (HF BeamSearchScorer, early_stopping
// true; temperature, stop strings and logprobs do not apply). Cancelling `handle` or passing the
// deadline stops it before the next decoding step (CANCELLED / DEADLINE_EXCEEDED). Its beams'
// KV caches are reserved against the model's KV budget (RESOURCE_EXHAUSTED at once when they do
// not fit), and it is counted in ServedModel::direct_in_flight so shutdown waits for it.
#pragma once

#include <functional>

#include <grpcpp/support/status.h>

#include "server/served_model.h"
#include "triad/v1/triad.pb.h"

namespace triad {

// Runs beam search for `prompt` on a new thread, fills `response` and calls `done` there.
void StartBeamSearch(ServedModel& served, std::vector<int64_t> prompt,
                     const v1::GenerateRequest& request, v1::GenerateResponse* response,
                     std::chrono::steady_clock::time_point deadline,
                     std::shared_ptr<RequestHandle> handle,
                     std::function<void(grpc::Status)> done);

}  // namespace triad
