// CallRecord: one RPC as the metrics see it, shared by every handler file of the service.
//
// Thread contract: a CallRecord is immutable after construction; Done/Refuse may be called
// from any thread (Metrics is thread-safe), once per call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "server/metrics.h"
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

// One RPC as the metrics see it: its model label, method, start and deadline. The call's final
// status passes through Done() or Refuse() exactly once, wherever the call finishes.
class CallRecord {
 public:
  CallRecord(Metrics* metrics, std::string model, const char* rpc,
             const grpc::CallbackServerContext* context)
      : metrics_(metrics),
        model_(std::move(model)),
        rpc_(rpc),
        deadline_(SteadyDeadline(context)) {}

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
    metrics_->RecordRequest(model_, rpc_, code,
                            std::chrono::duration<double>(now - start_).count());
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
  }
  void Classified(int64_t prompt_tokens, double queue_seconds) const {
    metrics_->RecordClassification(model_, prompt_tokens, queue_seconds);
  }

 private:
  Metrics* metrics_;
  std::string model_;
  static constexpr std::chrono::milliseconds kDeadlineSlack{10};
  const char* rpc_;
  SteadyClock::time_point start_ = SteadyClock::now();
  SteadyClock::time_point deadline_;
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
