// bf16 rounding must match PyTorch's (round-to-nearest-even, NaN kept) so that weights
// converted by the loader equal those in a bf16 checkpoint bit for bit.
#include "model/kernels/bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace triad::kernels {
namespace {

TEST(Bf16Test, ExactValuesRoundTrip) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 0.15625f, 65536.0f}) {
    EXPECT_EQ(Bf16ToFloat(FloatToBf16(v)), v) << v;
  }
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
}

TEST(Bf16Test, RoundsToNearestEven) {
  // bf16 keeps 7 explicit mantissa bits, so near 1 its step is 2^-7.
  EXPECT_EQ(FloatToBf16(1.0f + 0x1p-8f), 0x3f80);             // halfway, even is down
  EXPECT_EQ(FloatToBf16(1.0f + 3 * 0x1p-8f), 0x3f82);         // halfway, even is up
  EXPECT_EQ(FloatToBf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);  // above halfway
  EXPECT_EQ(FloatToBf16(-(1.0f + 0x1p-8f + 0x1p-20f)), 0xbf81);
}

TEST(Bf16Test, SpecialValues) {
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to inf
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload lives only in the low bits must not truncate to infinity.
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("1")))));
}

}  // namespace
}  // namespace triad::kernels
