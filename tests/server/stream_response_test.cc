// server/stream_response.h: GenerateStream messages queued behind a write join into one whose
// ids, log-probs and text are the parts' in order and whose final fields are the last part's.
#include "server/stream_response.h"

#include <gtest/gtest.h>

namespace triad {
namespace {

v1::GenerateStreamResponse Token(int32_t id, const std::string& text, float logprob) {
  v1::GenerateStreamResponse m;
  m.add_token_ids(id);
  m.set_text_delta(text);
  m.add_logprobs()->set_logprob(logprob);
  return m;
}

TEST(StreamResponse, AppendJoinsTokensTextAndTheFinalFields) {
  v1::GenerateStreamResponse joined;
  joined.add_prompt_logprobs()->set_logprob(-0.5f);  // an echo's first message
  AppendStreamResponse(&joined, Token(7, "Hel", -1.0f));
  AppendStreamResponse(&joined, Token(8, "", -2.0f));  // held back (a partial character)
  AppendStreamResponse(&joined, Token(9, "lo", -3.0f));
  v1::GenerateStreamResponse last;
  last.set_text_delta("!");
  last.set_done(true);
  last.set_finish_reason(v1::FINISH_REASON_LENGTH);
  last.mutable_usage()->set_generated_tokens(3);
  AppendStreamResponse(&joined, last);
  EXPECT_EQ(joined.text_delta(), "Hello!");
  ASSERT_EQ(joined.token_ids_size(), 3);
  EXPECT_EQ(joined.token_ids(0), 7);
  EXPECT_EQ(joined.token_ids(2), 9);
  ASSERT_EQ(joined.logprobs_size(), 3);
  EXPECT_EQ(joined.logprobs(1).logprob(), -2.0f);
  ASSERT_EQ(joined.prompt_logprobs_size(), 1);
  EXPECT_TRUE(joined.done());
  EXPECT_EQ(joined.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(joined.usage().generated_tokens(), 3u);
  // A token appended to an unfinished message leaves it unfinished.
  v1::GenerateStreamResponse open = Token(1, "a", 0.0f);
  AppendStreamResponse(&open, Token(2, "b", 0.0f));
  EXPECT_FALSE(open.done());
  EXPECT_EQ(open.text_delta(), "ab");
}

}  // namespace
}  // namespace triad
