#include "server/direct_generate.h"

#include <thread>

#include "model/generation.h"
#include "server/status_convert.h"

namespace triad {

void StartBeamSearch(ServedModel& served, std::vector<int64_t> prompt,
                     const v1::GenerateRequest& request, v1::GenerateResponse* response,
                     std::chrono::steady_clock::time_point deadline,
                     std::shared_ptr<RequestHandle> handle,
                     std::function<void(grpc::Status)> done) {
  GenerationOptions options;
  options.num_beams = request.sampling().num_beams();
  options.max_new_tokens = request.sampling().max_new_tokens() == 0
                               ? 16
                               : request.sampling().max_new_tokens();
  options.early_stopping = EarlyStopping::kTrue;
  // Checked before every step: a cancelled call or a passed deadline stops within one step.
  options.check = [&served, handle = std::move(handle), deadline]() -> absl::Status {
    if (handle->cancelled() || served.cancel_direct) return absl::CancelledError("cancelled");
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError("the request's deadline passed");
    }
    return absl::OkStatus();
  };
  const bool skip_special = !request.has_skip_special_tokens() || request.skip_special_tokens();
  // Every beam keeps a cache as long as one sequence's: counted against the model's KV budget.
  const int64_t per_beam =
      SequenceKvBytes(served.model->config(), served.model->placement().dtype,
                      static_cast<int64_t>(prompt.size()), options.max_new_tokens);
  auto reservation = served.scheduler->ReserveKv(options.num_beams * per_beam);
  if (!reservation.ok()) return done(ToGrpcStatus(reservation.status()));
  ++served.direct_in_flight;
  std::thread([&served, prompt = std::move(prompt), options, response, deadline, skip_special,
               finish = std::move(done), held = *std::move(reservation)]() mutable {
    auto done = [&](grpc::Status status) {
      held.reset();  // the KV memory is free before the caller hears back
      finish(std::move(status));
      --served.direct_in_flight;
    };
    const auto start = std::chrono::steady_clock::now();
    auto out = Generate(*served.model,
                        {at::tensor(prompt, at::kLong).view({1, -1}), at::Tensor()}, options);
    if (!out.ok()) return done(ToGrpcStatus(out.status()));
    if (std::chrono::steady_clock::now() > deadline) {
      return done(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the request's deadline passed"));
    }
    const at::Tensor row = out->sequences[0];
    std::vector<int32_t> ids;
    v1::FinishReason reason = v1::FINISH_REASON_LENGTH;
    const auto& eos = served.model->config().eos_token_ids;
    for (int64_t t = out->prompt_length; t < row.size(0); ++t) {
      ids.push_back(static_cast<int32_t>(row[t].item<int64_t>()));
      if (std::find(eos.begin(), eos.end(), ids.back()) != eos.end()) {
        reason = v1::FINISH_REASON_EOS;
        break;
      }
    }
    auto text = served.tokenizer->Decode(ids, skip_special);
    response->set_model(served.config.name);
    response->set_text(text.ok() ? *text : "");
    response->mutable_token_ids()->Add(ids.begin(), ids.end());
    response->set_finish_reason(reason);
    response->set_sequence_score(out->sequences_scores[0].item<float>());
    response->mutable_usage()->set_prompt_tokens(static_cast<uint32_t>(prompt.size()));
    response->mutable_usage()->set_generated_tokens(static_cast<uint32_t>(ids.size()));
    response->mutable_timings()->set_total_seconds(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    done(grpc::Status::OK);
  }).detach();
}

}  // namespace triad
