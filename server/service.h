// TriadService: the gRPC handlers of triad.v1.Triad over the resident models. Handlers are
// thin: validate and convert the request (tokenize, sampling parameters, deadline), Submit it
// to the model's scheduler and return; the scheduler's callbacks complete the call. Nothing
// here blocks a gRPC thread on model work (callback API, reactors).
//
// Every call's outcome is recorded in the metrics, and in the request log when it asks for it,
// as it finishes (CallRecord, call_record.h).
//
// Thread contract: the service is shared by every gRPC thread; models are added before the
// server starts and never removed.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "server/call_record.h"
#include "server/served_model.h"
#include "triad/v1/triad.grpc.pb.h"

namespace triad {

// Every method takes and returns raw bytes, parsed by ParseRequest (wire.h) so that a malformed
// request gets INVALID_ARGUMENT naming the field rather than gRPC's empty UNIMPLEMENTED.
using RawTriadService = v1::Triad::WithRawCallbackMethod_Generate<
    v1::Triad::WithRawCallbackMethod_GenerateStream<v1::Triad::WithRawCallbackMethod_Tokenize<
        v1::Triad::WithRawCallbackMethod_Detokenize<v1::Triad::WithRawCallbackMethod_ListModels<
            v1::Triad::WithRawCallbackMethod_GetModel<v1::Triad::WithRawCallbackMethod_Classify<
                v1::Triad::WithRawCallbackMethod_ClassifyBatch<v1::Triad::Service>>>>>>>>;

class TriadService final : public RawTriadService {
 public:
  // `sinks.metrics` is not null; it and `sinks.log` (null = no request log) outlive the
  // service.
  TriadService(std::map<std::string, std::unique_ptr<ServedModel>>* models, CallSinks sinks)
      : models_(*models), sinks_(sinks) {}

  // Each unary method: `in` is the encoded request, `out` receives the encoded response.
  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GenerateStream(grpc::CallbackServerContext* context,
                                                             const grpc::ByteBuffer* in) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override;
  // Classification (classify_service.cc).
  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* ClassifyBatch(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* in,
                                          grpc::ByteBuffer* out) override;

 private:
  // The ready model named `name`: NOT_FOUND / UNAVAILABLE naming it otherwise.
  absl::StatusOr<ServedModel*> Ready(const std::string& name) const;
  // Ready() for Generate: also INVALID_ARGUMENT for a checkpoint without an LM head.
  absl::StatusOr<ServedModel*> ReadyToGenerate(const std::string& name) const;
  // The metrics label of a call naming `model`: "" unless it is served (clients cannot add
  // label values).
  std::string ModelLabel(const std::string& model) const;

  std::map<std::string, std::unique_ptr<ServedModel>>& models_;
  CallSinks sinks_;
};

// ModelInfo of one served model.
v1::ModelInfo DescribeModel(const ServedModel& served);
// Its classify_tasks (classify_service.cc).
void DescribeClassifyTasks(const ServedModel& served, v1::ModelInfo* info);
// Proto -> ModelTasks conversions (classify_service.cc). ToClassifyTask: INVALID_ARGUMENT
// naming `task` for UNSPECIFIED.
absl::StatusOr<ClassifyTaskKind> ToClassifyTask(v1::ClassifyTask task);
ItemTexts ToItemTexts(const v1::ClassifyItem& item);

}  // namespace triad
