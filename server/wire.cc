#include "server/wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/tokenizer/unicode.h"

namespace triad {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;

std::string Flatten(const grpc::ByteBuffer& in) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!in.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

// Walks one message's fields; `prefix` is its path ("" at the top, "sampling." below).
// Returns false when the encoding cannot be walked further.
bool Walk(CodedInputStream& in, const Descriptor& type, const std::string& prefix, int depth,
          absl::Status* found) {
  std::map<int, int> seen;  // occurrences per field number: the index of a repeated field
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return true;  // end of this message (or of its limit)
    const int number = WireFormatLite::GetTagFieldNumber(tag);
    const FieldDescriptor* field = type.FindFieldByNumber(number);
    const bool delimited =
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (field == nullptr || !delimited ||
        (field->type() != FieldDescriptor::TYPE_STRING &&
         field->type() != FieldDescriptor::TYPE_MESSAGE)) {
      if (!WireFormatLite::SkipField(&in, tag)) return false;
      continue;
    }
    std::string path = prefix + field->name();
    if (field->is_repeated()) path += absl::StrCat("[", seen[number]++, "]");
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) return false;
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      std::string value;
      if (!in.ReadString(&value, static_cast<int>(length))) return false;
      const absl::Status valid = tokenizer::ValidateUtf8(value, path);
      if (!valid.ok()) {
        *found = valid;
        return false;
      }
      continue;
    }
    if (depth > 64) return false;
    const CodedInputStream::Limit limit = in.PushLimit(static_cast<int>(length));
    if (!Walk(in, *field->message_type(), path + ".", depth + 1, found)) return false;
    if (!in.ConsumedEntireMessage()) return false;
    in.PopLimit(limit);
  }
}

}  // namespace

absl::Status FindInvalidUtf8(const std::string& bytes, const Descriptor& type) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  absl::Status found;
  Walk(in, type, "", 0, &found);
  return found;
}

absl::Status ParseRequest(const grpc::ByteBuffer& in, google::protobuf::Message* out) {
  {
    // Parsed straight from the buffer's slices (the copy shares them; the reader consumes it).
    // Protobuf would log an ERROR line for every invalid-UTF-8 request; the caller gets the
    // error instead (clients cannot fill the server's log).
    const google::protobuf::LogSilencer quiet;
    grpc::ByteBuffer shared(in);
    if (grpc::GenericDeserialize<grpc::ProtoBufferReader, google::protobuf::Message>(&shared, out)
            .ok()) {
      return absl::OkStatus();
    }
  }
  // Only a refused request is flattened, for the walk that names its field.
  const std::string bytes = Flatten(in);
  const absl::Status utf8 = FindInvalidUtf8(bytes, *out->GetDescriptor());
  if (!utf8.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(utf8.message(), "; string fields must hold UTF-8 text"));
  }
  return absl::InvalidArgumentError(absl::StrCat("request: not a valid ",
                                                 out->GetDescriptor()->full_name(),
                                                 " (malformed protobuf encoding)"));
}

grpc::Status SerializeResponse(const google::protobuf::Message& message, grpc::ByteBuffer* out) {
  out->Clear();  // the writer fills an empty buffer (a stream reuses one)
  bool own_buffer = false;
  return grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::Message>(
      message, out, &own_buffer);
}

}  // namespace triad
