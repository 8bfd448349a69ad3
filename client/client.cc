#include "client/client.h"

#include "grpc/health/v1/health.grpc.pb.h"

namespace triad::client {
namespace {

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

}  // namespace

bool ParseClassifyTask(const std::string& name, v1::ClassifyTask* task) {
  struct Named {
    const char* name;
    v1::ClassifyTask task;
  };
  static constexpr Named kTasks[] = {{"entailment", v1::CLASSIFY_TASK_ENTAILMENT},
                                     {"similarity", v1::CLASSIFY_TASK_SIMILARITY},
                                     {"multiple_choice", v1::CLASSIFY_TASK_MULTIPLE_CHOICE},
                                     {"single", v1::CLASSIFY_TASK_SINGLE}};
  for (const Named& t : kTasks) {
    if (name == t.name) {
      *task = t.task;
      return true;
    }
  }
  return false;
}

TriadClient::TriadClient(const std::string& address)
    : channel_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
      stub_(v1::Triad::NewStub(channel_)) {}

grpc::Status TriadClient::Generate(const v1::GenerateRequest& request,
                                   v1::GenerateResponse* response,
                                   std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  SetDeadline(context, timeout);
  return stub_->Generate(&context, request, response);
}

grpc::Status TriadClient::GenerateStream(
    const v1::GenerateRequest& request,
    const std::function<void(const v1::GenerateStreamResponse&)>& on_message,
    std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  SetDeadline(context, timeout);
  auto reader = stub_->GenerateStream(&context, request);
  v1::GenerateStreamResponse message;
  while (reader->Read(&message)) on_message(message);
  return reader->Finish();
}

grpc::Status TriadClient::Classify(const v1::ClassifyRequest& request,
                                   v1::ClassifyResponse* response,
                                   std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  SetDeadline(context, timeout);
  return stub_->Classify(&context, request, response);
}

grpc::Status TriadClient::ClassifyBatch(const v1::ClassifyBatchRequest& request,
                                        v1::ClassifyBatchResponse* response,
                                        std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  SetDeadline(context, timeout);
  return stub_->ClassifyBatch(&context, request, response);
}

grpc::Status TriadClient::Tokenize(const v1::TokenizeRequest& request,
                                   v1::TokenizeResponse* response) {
  grpc::ClientContext context;
  SetDeadline(context, std::chrono::seconds(30));
  return stub_->Tokenize(&context, request, response);
}

grpc::Status TriadClient::ListModels(v1::ListModelsResponse* response) {
  grpc::ClientContext context;
  SetDeadline(context, std::chrono::seconds(30));
  return stub_->ListModels(&context, v1::ListModelsRequest(), response);
}

grpc::Status TriadClient::Health(const std::string& service, std::string* status) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  SetDeadline(context, std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status result = health->Check(&context, request, &response);
  if (result.ok()) {
    *status = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  }
  return result;
}

}  // namespace triad::client
