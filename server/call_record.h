// CallRecord: one RPC as the metrics and the request log see it, shared by every handler file
// of the service.
//
// Thread contract: Done/Refuse may be called from any thread (Metrics and RequestLog are
// thread-safe), once per call. Generated/Classified are called before it (the handlers call
// them on the scheduler's thread before the reply, which Done follows on that thread or through
// the reactor's lock); apart from what Generated keeps for the log line, a CallRecord is
// immutable after construction.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "server/metrics.h"
#include "server/request_log.h"
#include "server/scheduler.h"
#include "server/status_convert.h"
#include "server/wire.h"

namespace triad {

// The call's deadline on the steady clock; time_point::max() when it has none.
inline SteadyClock::time_point SteadyDeadline(const grpc::CallbackServerContext* context) {
  const auto system_deadline = context->deadline();
  const auto now = std::chrono::system_clock::now();
  if (system_deadline - now > std::chrono::hours(24 * 365)) return SteadyClock::time_point::max();
  return SteadyClock::now() +
         std::chrono::duration_cast<SteadyClock::duration>(system_deadline - now);
}

// The scheduler handle of a call. gRPC may run OnCancel before Submit has returned the handle:
// a cancel that comes first is applied when the handle arrives.
class CancelSlot {
 public:
  void Cancel() {
    std::shared_ptr<RequestHandle> h;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_requested_ = true;
      h = handle_;
    }
    if (h) h->Cancel();
  }
  void Set(std::shared_ptr<RequestHandle> handle) {
    bool cancel = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      handle_ = handle;
      cancel = cancel_requested_;
    }
    if (cancel) handle->Cancel();
  }

 private:
  std::mutex mu_;
  std::shared_ptr<RequestHandle> handle_;  // guarded by mu_
  bool cancel_requested_ = false;          // guarded by mu_
};

// Where every call's outcome goes: the metrics (not null) and the request log (null = none).
struct CallSinks {
  Metrics* metrics = nullptr;
  const RequestLog* log = nullptr;
};

// The request log's name of a finish reason.
inline const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return "length";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStop: return "stop";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kDeadline: return "deadline";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

// One RPC as the metrics see it: its model label, method, start and deadline. The call's final
// status passes through Done() or Refuse() exactly once, wherever the call finishes.
class CallRecord {
 public:
  CallRecord(const CallSinks& sinks, std::string model, const char* rpc,
             const grpc::CallbackServerContext* context)
      : metrics_(sinks.metrics),
        log_(sinks.log),
        model_(std::move(model)),
        rpc_(rpc),
        deadline_(SteadyDeadline(context)),
        peer_(log_ != nullptr ? context->peer() : "") {}

  // Records the call's outcome and returns `status` for Finish().
  grpc::Status Done(grpc::Status status) const {
    const auto now = SteadyClock::now();
    auto code = static_cast<absl::StatusCode>(status.error_code());
    // gRPC cancels a call whose deadline passed; the client sees DEADLINE_EXCEEDED, so do we.
    // The client's own cancellation at its deadline can arrive a little before the server's
    // copy of the deadline (which starts when the request arrives): kDeadlineSlack covers it.
    if (code == absl::StatusCode::kCancelled && now + kDeadlineSlack >= deadline_) {
      code = absl::StatusCode::kDeadlineExceeded;
    }
    const double seconds = std::chrono::duration<double>(now - start_).count();
    metrics_->RecordRequest(model_, rpc_, code, seconds);
    if (log_ != nullptr && log_->Wants(code)) {
      log_->Record({rpc_, model_, peer_, code, status.error_message(), seconds, generation_});
    }
    return status;
  }
  // A request refused before it ran: counted as rejected, then as Done.
  grpc::Status Refuse(const absl::Status& status) const {
    metrics_->RecordRejected(model_, status.code());
    return Done(ToGrpcStatus(status));
  }
  void Generated(const Completion& c) const {
    metrics_->RecordGeneration(
        model_, {c.prompt_tokens, static_cast<int64_t>(c.token_ids.size()), c.queue_seconds,
                 c.first_token_seconds, c.total_seconds});
    if (log_ != nullptr) {
      generation_ = GenerationLogFields{c.prompt_tokens,     c.cached_prompt_tokens,
                                        static_cast<int64_t>(c.token_ids.size()),
                                        c.queue_seconds,     c.first_token_seconds,
                                        FinishReasonName(c.reason)};
    }
  }
  void Classified(int64_t prompt_tokens, double queue_seconds) const {
    metrics_->RecordClassification(model_, prompt_tokens, queue_seconds);
  }

 private:
  Metrics* metrics_;
  const RequestLog* log_;
  std::string model_;
  static constexpr std::chrono::milliseconds kDeadlineSlack{10};
  const char* rpc_;
  SteadyClock::time_point start_ = SteadyClock::now();
  SteadyClock::time_point deadline_;
  std::string peer_;  // only with a log
  // Set by Generated for the log line (see the thread contract).
  mutable std::optional<GenerationLogFields> generation_;
};

// Finishes a unary call at once with `status`, sending `response` when it is OK.
inline grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context, const CallRecord& call,
                                         const absl::Status& status,
                                         const google::protobuf::Message& response,
                                         grpc::ByteBuffer* out) {
  grpc::Status final_status = ToGrpcStatus(status);
  if (final_status.ok()) final_status = SerializeResponse(response, out);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(call.Done(std::move(final_status)));
  return reactor;
}

// Finishes a unary call refused before it ran (a bad request, an unknown model, a full queue).
inline grpc::ServerUnaryReactor* Refused(grpc::CallbackServerContext* context, const CallRecord& call,
                                         const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(call.Refuse(status));
  return reactor;
}

}  // namespace triad
