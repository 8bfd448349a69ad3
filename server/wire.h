// The wire form of TriadService's messages. The service's methods take raw bytes (gRPC's raw
// callback API) and parse them here, because gRPC 1.51's callback API answers a request that
// protobuf cannot parse with UNIMPLEMENTED and an empty message, and protobuf refuses a proto3
// string holding invalid UTF-8: a client's bad bytes would get an error naming nothing.
// ParseRequest names the field instead.
//
// Thread contract: stateless; callable from any thread.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace triad {

// Parses `in` into `out`. INVALID_ARGUMENT naming the field for a string field that is not
// valid UTF-8 (e.g. "sampling.stop[1] is not valid UTF-8 ..."), and naming the message type for
// any other malformed encoding.
absl::Status ParseRequest(const grpc::ByteBuffer& in, google::protobuf::Message* out);

// The path of the first string field in `bytes` (an encoded message of `type`) whose value is
// not valid UTF-8, e.g. "items[3].premise", with ValidateUtf8's error for it; OK when there is
// none or when the encoding is too broken to walk.
absl::Status FindInvalidUtf8(const std::string& bytes, const google::protobuf::Descriptor& type);

// Encodes `message` into `out`, replacing what it held; INTERNAL if protobuf cannot.
grpc::Status SerializeResponse(const google::protobuf::Message& message, grpc::ByteBuffer* out);

// A unary call's reactor that owns its response and sends it as bytes: Reply() encodes the
// response into the call's buffer when the status is OK, then finishes. Deletes itself when done.
template <typename Response>
class UnaryReply : public grpc::ServerUnaryReactor {
 public:
  void OnDone() override { delete this; }

 protected:
  explicit UnaryReply(grpc::ByteBuffer* out) : out_(out) {}
  Response* response() { return &response_; }
  void Reply(grpc::Status status) {
    if (status.ok()) status = SerializeResponse(response_, out_);
    Finish(std::move(status));
  }

 private:
  Response response_;
  grpc::ByteBuffer* out_;
};

}  // namespace triad
