// RefillGate on synthetic times (window 10 ms): open from the start and while finishes are
// answered within the window; closed after five unanswered finishes (0.75^5 < 1/4 <= 0.75^4);
// one answered finish reopens it; arrivals with no finish to claim, and finishes claimed
// late, do not count as hits.
#include "server/refill_gate.h"

#include <gtest/gtest.h>

#include <chrono>

namespace triad {
namespace {

using std::chrono::milliseconds;
using Clock = RefillGate::Clock;

TEST(RefillGateTest, ClosesOnUnansweredFinishesAndReopensOnAnsweredOnes) {
  RefillGate gate(milliseconds(10));
  Clock::time_point t{};
  EXPECT_TRUE(gate.Open(t));
  // Answered: the next request 2 ms after each finish.
  for (int i = 0; i < 20; ++i) {
    gate.Finished(t);
    gate.Arrived(t + milliseconds(2));
    t += milliseconds(50);
  }
  EXPECT_TRUE(gate.Open(t));
  EXPECT_DOUBLE_EQ(gate.hit_rate(), 1.0);
  // Unanswered: nothing arrives within 10 ms; the fifth miss closes the gate.
  for (int i = 1; i <= 5; ++i) {
    gate.Finished(t);
    t += milliseconds(11);
    EXPECT_EQ(gate.Open(t), i < 5) << i << " misses";
    gate.Arrived(t);  // 11 ms late: claims nothing
    t += milliseconds(50);
  }
  EXPECT_DOUBLE_EQ(gate.hit_rate(), 0.2373046875);  // 0.75^5
  // One answered finish reopens it.
  gate.Finished(t);
  gate.Arrived(t + milliseconds(10));  // at the window's edge: still within it
  EXPECT_TRUE(gate.Open(t + milliseconds(20)));
}

TEST(RefillGateTest, ArrivalsWithoutFinishesAreNotHits) {
  RefillGate gate(milliseconds(10));
  Clock::time_point t{};
  for (int i = 0; i < 6; ++i) {
    gate.Finished(t);
    t += milliseconds(20);
  }
  EXPECT_FALSE(gate.Open(t));
  const double rate = gate.hit_rate();
  for (int i = 0; i < 10; ++i) gate.Arrived(t + milliseconds(i));  // nothing to claim
  EXPECT_EQ(gate.hit_rate(), rate);
  // Two finishes in one step and two arrivals: both claimed, two hits.
  gate.Finished(t);
  gate.Finished(t);
  gate.Arrived(t + milliseconds(1));
  gate.Arrived(t + milliseconds(2));
  gate.Arrived(t + milliseconds(3));  // a third claims nothing
  const double two_hits = 1 - (1 - rate) * 0.75 * 0.75;
  EXPECT_NEAR(gate.hit_rate(), two_hits, 1e-12);
  EXPECT_TRUE(gate.Open(t + milliseconds(3)));
}

TEST(RefillGateTest, PendingFinishesAreBounded) {
  RefillGate gate(std::chrono::hours(1));
  Clock::time_point t{};
  for (size_t i = 0; i < RefillGate::kMaxPending + 8; ++i) gate.Finished(t);
  // The 8 oldest were dropped as misses: 0.75^8 < 1/4.
  EXPECT_FALSE(gate.Open(t));
}

}  // namespace
}  // namespace triad
