// server/wire.h: requests parsed from raw bytes. A string field that is not UTF-8 is named with
// its full path (nested messages, repeated indices); other malformed bytes name the message
// type; and no byte string, however broken, crashes the parser or the walker (mutation fuzz).
#include "server/wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "triad/v1/triad.pb.h"

namespace triad {
namespace {

using ::testing::HasSubstr;

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// `message` encoded, with the bytes of `marker` replaced by as many 0xFF bytes.
std::string Corrupted(const google::protobuf::Message& message, const std::string& marker) {
  std::string bytes = message.SerializeAsString();
  const size_t at = bytes.find(marker);
  EXPECT_NE(at, std::string::npos) << marker;
  if (at != std::string::npos) bytes.replace(at, marker.size(), std::string(marker.size(), '\xff'));
  return bytes;
}

TEST(WireTest, ParsesAValidRequest) {
  v1::GenerateRequest request;
  request.set_model("llama");
  request.set_text("héllo wörld");
  request.mutable_sampling()->add_stop("\n");
  v1::GenerateRequest parsed;
  ASSERT_TRUE(ParseRequest(Buffer(request.SerializeAsString()), &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), request.SerializeAsString());
}

TEST(WireTest, InvalidUtf8NamesTheFieldPath) {
  v1::GenerateRequest g;
  g.set_model("llama");
  g.set_text("say XX");
  v1::GenerateRequest out;
  absl::Status s = ParseRequest(Buffer(Corrupted(g, "XX")), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("text is not valid UTF-8 (bad byte sequence at byte offset 4)"));

  g.set_text("fine");
  g.mutable_sampling()->add_stop("a");
  g.mutable_sampling()->add_stop("b");
  g.mutable_sampling()->add_stop("XY");
  s = ParseRequest(Buffer(Corrupted(g, "XY")), &out);
  EXPECT_THAT(std::string(s.message()), HasSubstr("sampling.stop[2] is not valid UTF-8"));

  v1::ClassifyBatchRequest c;
  c.set_model("t5");
  for (int i = 0; i < 3; ++i) {
    v1::ClassifyItem* item = c.add_items();
    item->set_context("ctx");
    item->add_choices("one");
    item->add_choices(i == 2 ? "QQ" : "two");
  }
  v1::ClassifyBatchRequest batch;
  s = ParseRequest(Buffer(Corrupted(c, "QQ")), &batch);
  EXPECT_THAT(std::string(s.message()), HasSubstr("items[2].choices[1] is not valid UTF-8"));

  // A message nested in a oneof.
  v1::GenerateRequest task;
  task.set_model("t5");
  task.mutable_task_input()->set_premise("ZZ");
  s = ParseRequest(Buffer(Corrupted(task, "ZZ")), &out);
  EXPECT_THAT(std::string(s.message()), HasSubstr("task_input.premise is not valid UTF-8"));
}

TEST(WireTest, OtherMalformedBytesNameTheMessageType) {
  v1::GetModelRequest out;
  const absl::Status s = ParseRequest(Buffer(std::string("\x0a\x05ll", 4)), &out);  // truncated
  EXPECT_EQ(s, absl::InvalidArgumentError(
                   "request: not a valid triad.v1.GetModelRequest (malformed protobuf encoding)"));
}

// Random mutations of valid encodings: every outcome is OK or INVALID_ARGUMENT, never a crash.
TEST(WireTest, MutatedBytesNeverCrash) {
  v1::ClassifyBatchRequest c;
  c.set_model("t5");
  for (int i = 0; i < 4; ++i) {
    v1::ClassifyItem* item = c.add_items();
    item->set_premise("the cat sat");
    item->set_hypothesis("a cat");
    item->add_segment_ids()->add_ids(i);
  }
  v1::GenerateRequest g;
  g.set_text("hello");
  g.mutable_sampling()->add_stop("x");
  g.mutable_sampling()->set_temperature(0.5f);
  const std::string seeds[] = {c.SerializeAsString(), g.SerializeAsString()};
  std::mt19937 rng(7);
  int rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = seeds[i % 2];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0: bytes[at] = static_cast<char>(rng()); break;
        case 1: bytes.resize(at); break;
        default: bytes.insert(at, 1, static_cast<char>(rng())); break;
      }
    }
    absl::Status s;
    if (i % 2 == 0) {
      v1::ClassifyBatchRequest out;
      s = ParseRequest(Buffer(bytes), &out);
    } else {
      v1::GenerateRequest out;
      s = ParseRequest(Buffer(bytes), &out);
    }
    ASSERT_TRUE(s.ok() || s.code() == absl::StatusCode::kInvalidArgument) << s;
    rejected += s.ok() ? 0 : 1;
  }
  EXPECT_GT(rejected, 1000);  // the mutations do break encodings
}

TEST(WireTest, SerializeResponseReplacesTheBuffer) {
  v1::TokenizeResponse a, b, back;
  a.add_tokens("first");
  b.add_tokens("second");
  grpc::ByteBuffer out;
  ASSERT_TRUE(SerializeResponse(a, &out).ok());
  ASSERT_TRUE(SerializeResponse(b, &out).ok());
  ASSERT_TRUE(ParseRequest(out, &back).ok());
  EXPECT_EQ(back.tokens(0), "second");
}

}  // namespace
}  // namespace triad
