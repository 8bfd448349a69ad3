// The probe is a measurement, so only sanity is testable: a plausible positive figure, and
// zero for inputs that leave nothing to read.
#include "model/kernels/bandwidth.h"

#include <gtest/gtest.h>

namespace triad::kernels {
namespace {

TEST(BandwidthTest, MeasuresAPlausibleFigure) {
  const double gbs = MeasureReadBandwidthGBs(size_t{64} << 20, 2, 2);
  EXPECT_GT(gbs, 0.5);
  EXPECT_LT(gbs, 10000.0);
}

TEST(BandwidthTest, OddSizesAndThreadCountsWork) {
  EXPECT_GT(MeasureReadBandwidthGBs((size_t{3} << 20) + 17, 3, 1), 0.0);
  EXPECT_GT(MeasureReadBandwidthGBs(size_t{1} << 20, 0, 0), 0.0);
}

TEST(BandwidthTest, NothingToReadGivesZero) {
  EXPECT_EQ(MeasureReadBandwidthGBs(0, 2, 1), 0.0);
  EXPECT_EQ(MeasureReadBandwidthGBs(100, 2, 1), 0.0);  // under one cache line per thread
}

}  // namespace
}  // namespace triad::kernels
