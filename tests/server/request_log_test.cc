// RequestLog (label unit): which calls each level writes, and the logfmt line: fields, quoting
// and escaping of what a client can put in a message, and the cut of long messages.
#include "server/request_log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace triad {
namespace {

RequestLogEntry Entry(absl::StatusCode code, std::string message = "") {
  RequestLogEntry e;
  e.rpc = "Generate";
  e.model = "llama";
  e.peer = "ipv4:127.0.0.1:53126";
  e.code = code;
  e.message = std::move(message);
  e.seconds = 0.0842;
  return e;
}

TEST(RequestLog, LevelsChooseTheCalls) {
  EXPECT_EQ(ParseRequestLogLevel("none"), RequestLogLevel::kNone);
  EXPECT_EQ(ParseRequestLogLevel("errors"), RequestLogLevel::kErrors);
  EXPECT_EQ(ParseRequestLogLevel("all"), RequestLogLevel::kAll);
  EXPECT_EQ(ParseRequestLogLevel("ALL"), std::nullopt);
  const RequestLog none(RequestLogLevel::kNone), errors(RequestLogLevel::kErrors),
      all(RequestLogLevel::kAll);
  for (const absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kCancelled,
        absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kInternal}) {
    EXPECT_FALSE(none.Wants(code));
    EXPECT_TRUE(errors.Wants(code));
    EXPECT_TRUE(all.Wants(code));
  }
  EXPECT_FALSE(none.Wants(absl::StatusCode::kOk));
  EXPECT_FALSE(errors.Wants(absl::StatusCode::kOk));
  EXPECT_TRUE(all.Wants(absl::StatusCode::kOk));
}

TEST(RequestLog, AGenerationLineHasItsUsageAndTimings) {
  RequestLogEntry e = Entry(absl::StatusCode::kOk);
  e.generation = GenerationLogFields{5, 0, 16, 0.0003, 0.0217, "length"};
  EXPECT_EQ(FormatRequestLine(e),
            "triadd: request rpc=Generate model=llama code=OK ms=84.2 "
            "peer=ipv4:127.0.0.1:53126 prompt_tokens=5 cached_prompt_tokens=0 "
            "generated_tokens=16 queue_ms=0.3 ttft_ms=21.7 finish=length");
}

TEST(RequestLog, AnErrorLineQuotesAndEscapesItsMessage) {
  RequestLogEntry e = Entry(absl::StatusCode::kInvalidArgument,
                            "sampling.stop[0]: \"a\\b\"\nnext\tline \x01 \xE4\xB8\xAD");
  e.model = "";  // an unknown model has no label
  EXPECT_EQ(FormatRequestLine(e),
            "triadd: request rpc=Generate model=\"\" code=INVALID_ARGUMENT ms=84.2 "
            "peer=ipv4:127.0.0.1:53126 "
            "error=\"sampling.stop[0]: \\\"a\\\\b\\\"\\nnext\\tline \\x01 \xE4\xB8\xAD\"");
}

TEST(RequestLog, LongMessagesAreCutAtACharacterBoundary) {
  // 511 ASCII bytes, then a 3-byte character across the 512-byte limit.
  const std::string message = std::string(511, 'x') + "\xE4\xB8\xAD" + std::string(100, 'y');
  const std::string line = FormatRequestLine(Entry(absl::StatusCode::kInternal, message));
  const std::string error = " error=" + std::string(511, 'x') + "...";  // no quoting needed
  ASSERT_GE(line.size(), error.size());
  EXPECT_EQ(line.substr(line.size() - error.size()), error) << line;
}

TEST(RequestLog, RecordWritesOneLineOnlyWhenTheLevelAsks) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  const RequestLog errors(RequestLogLevel::kErrors, out);
  errors.Record(Entry(absl::StatusCode::kOk));
  errors.Record(Entry(absl::StatusCode::kDeadlineExceeded, "the deadline passed"));
  std::rewind(out);
  std::string text;
  for (int c = std::fgetc(out); c != EOF; c = std::fgetc(out)) text += static_cast<char>(c);
  std::fclose(out);
  EXPECT_EQ(text,
            "triadd: request rpc=Generate model=llama code=DEADLINE_EXCEEDED ms=84.2 "
            "peer=ipv4:127.0.0.1:53126 error=\"the deadline passed\"\n");
}

}  // namespace
}  // namespace triad
