// TriadClient: a small synchronous client of triad.v1.Triad used by the `triad` CLI and its
// load generator. One client per channel; methods may be called from several threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "triad/v1/triad.grpc.pb.h"

namespace triad::client {

class TriadClient {
 public:
  explicit TriadClient(const std::string& address);

  // Unary Generate with a deadline of `timeout` from now.
  grpc::Status Generate(const v1::GenerateRequest& request, v1::GenerateResponse* response,
                        std::chrono::milliseconds timeout);
  // Streaming Generate: `on_message` runs for every message as it arrives.
  grpc::Status GenerateStream(const v1::GenerateRequest& request,
                              const std::function<void(const v1::GenerateStreamResponse&)>& on_message,
                              std::chrono::milliseconds timeout);
  grpc::Status Tokenize(const v1::TokenizeRequest& request, v1::TokenizeResponse* response);
  grpc::Status ListModels(v1::ListModelsResponse* response);
  // grpc.health.v1 Check of `service` ("" = the whole server): "SERVING", "NOT_SERVING", ...
  grpc::Status Health(const std::string& service, std::string* status);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Triad::Stub> stub_;
};

}  // namespace triad::client
