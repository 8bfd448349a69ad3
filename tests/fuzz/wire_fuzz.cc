// Fuzz target: ParseRequest, the first code every RPC's bytes reach (server/wire.h). Byte 0
// picks the request type (Generate, Classify, ClassifyBatch, Tokenize, Detokenize, GetModel);
// the rest is the encoded message. Bytes must parse or give INVALID_ARGUMENT with a message,
// never crash; a parsed message holds only valid UTF-8 strings (FindInvalidUtf8 finds none)
// and survives a serialize/parse round trip unchanged.
#include <cstdint>
#include <memory>
#include <string>

#include "server/wire.h"
#include "tests/fuzz/fuzz_check.h"
#include "triad/v1/triad.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const google::protobuf::Message* const types[] = {
      &triad::v1::GenerateRequest::default_instance(),
      &triad::v1::ClassifyRequest::default_instance(),
      &triad::v1::ClassifyBatchRequest::default_instance(),
      &triad::v1::TokenizeRequest::default_instance(),
      &triad::v1::DetokenizeRequest::default_instance(),
      &triad::v1::GetModelRequest::default_instance()};
  const std::unique_ptr<google::protobuf::Message> message(types[data[0] % 6]->New());
  grpc::Slice slice(data + 1, size - 1);
  const grpc::ByteBuffer buffer(&slice, 1);
  const absl::Status status = triad::ParseRequest(buffer, message.get());
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, "%s",
               status.ToString().c_str());
    FUZZ_CHECK(!status.message().empty(), "an error without a message");
    return 0;
  }
  FUZZ_ACCEPTED();
  const std::string bytes = message->SerializeAsString();
  const absl::Status utf8 = triad::FindInvalidUtf8(bytes, *message->GetDescriptor());
  FUZZ_CHECK(utf8.ok(), "parsed, yet %s", utf8.ToString().c_str());
  std::unique_ptr<google::protobuf::Message> again(message->New());
  FUZZ_CHECK(again->ParseFromString(bytes) && again->SerializeAsString() == bytes,
             "no round trip");
  return 0;
}
