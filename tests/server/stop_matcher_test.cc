// StopMatcher: text is cut before the first stop string, and what TakeReady hands out in
// pieces always concatenates to the final text (a possible stop prefix is held back).
#include "server/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>

namespace triad {
namespace {

TEST(StopMatcherTest, HoldsBackPossibleStopPrefixesAndCutsAtTheStop) {
  StopMatcher m({"\n\n", "END"});
  std::string sent;
  EXPECT_FALSE(m.Append("Hello"));
  sent += m.TakeReady(false);
  EXPECT_EQ(sent, "Hello");
  EXPECT_FALSE(m.Append("\n"));
  EXPECT_EQ(m.TakeReady(false), "");  // could become "\n\n"
  EXPECT_FALSE(m.Append("x E"));
  sent += m.TakeReady(false);
  EXPECT_EQ(sent, "Hello\nx ");  // "E" held back
  EXPECT_FALSE(m.Append("N"));
  EXPECT_TRUE(m.Append("D and more"));
  sent += m.TakeReady(true);
  EXPECT_EQ(m.text(), "Hello\nx ");
  EXPECT_EQ(sent, m.text());
  EXPECT_TRUE(m.Append("ignored"));  // stays stopped
  EXPECT_EQ(m.text(), "Hello\nx ");
}

TEST(StopMatcherTest, PiecesAlwaysConcatenateToTheText) {
  std::mt19937 rng(3);
  const std::string alphabet = "ab\n";
  for (int trial = 0; trial < 500; ++trial) {
    StopMatcher m({"aab", "\n\n", "ba\n"});
    std::string sent;
    for (int step = 0; step < 20 && !m.stopped(); ++step) {
      std::string delta;
      for (int k = static_cast<int>(rng() % 3); k >= 0; --k) delta += alphabet[rng() % 3];
      m.Append(delta);
      sent += m.TakeReady(false);
      ASSERT_EQ(m.text().compare(0, sent.size(), sent), 0) << "sent text must stay a prefix";
    }
    sent += m.TakeReady(true);
    ASSERT_EQ(sent, m.text());
    for (const char* stop : {"aab", "\n\n", "ba\n"}) {
      ASSERT_EQ(m.text().find(stop), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace triad
