#include "client/client.h"

#include "grpc/health/v1/health.grpc.pb.h"

namespace triad::client {
namespace {

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

}  // namespace

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
