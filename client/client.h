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

// The CLI spelling of a task ("entailment", "similarity", "multiple_choice", "single") as the
// proto enum; false for any other name.
bool ParseClassifyTask(const std::string& name, v1::ClassifyTask* task);

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
  // Unary Classify / ClassifyBatch with a deadline of `timeout` from now.
  grpc::Status Classify(const v1::ClassifyRequest& request, v1::ClassifyResponse* response,
                        std::chrono::milliseconds timeout);
  grpc::Status ClassifyBatch(const v1::ClassifyBatchRequest& request,
                             v1::ClassifyBatchResponse* response,
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
