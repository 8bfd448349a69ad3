// The one place where absl::Status becomes grpc::Status (TensorFlow Serving's rule).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace triad {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace triad
