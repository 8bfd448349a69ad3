// The shared layers' fused CPU paths against the ATen expressions they replace.
#include "model/layers.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace triad {
namespace {

// ApplyRotary equals x * cos + rotate_half(x) * sin bit for bit: q and k as SplitHeads views
// (strided) and contiguous, cos / sin shared by the batch or one per sequence, 1 to 17
// positions; its result is laid out [B, T, H, D] as the expression's. A bfloat16 x takes the
// expression itself.
TEST(LayersTest, ApplyRotaryEqualsTheExpressionBitForBit) {
  at::manual_seed(7);
  for (const int64_t steps : {1, 5, 17}) {
    for (const int64_t cos_batch : {1, 2}) {
      const at::Tensor packed = at::randn({2, steps, 3 * 64}) * 4;
      const at::Tensor angles = at::randn({cos_batch, 1, steps, 64}) * 10;
      const at::Tensor cos = angles.cos(), sin = angles.sin();
      for (const at::Tensor& x : {SplitHeads(packed, 3), SplitHeads(packed, 3).contiguous()}) {
        SCOPED_TRACE(testing::Message() << "steps " << steps << " cos batch " << cos_batch
                                        << " contiguous " << x.is_contiguous());
        const at::Tensor want = x * cos + RotateHalf(x) * sin;
        const at::Tensor got = ApplyRotary(x, cos, sin);
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_TRUE(at::equal(got, want)) << (got - want).abs().max().item<float>();
        EXPECT_TRUE(got.transpose(1, 2).is_contiguous());
      }
    }
  }
  const at::Tensor x16 = SplitHeads(at::randn({1, 4, 2 * 8}), 2).to(at::kBFloat16);
  const at::Tensor c16 = at::randn({1, 1, 4, 8}).to(at::kBFloat16);
  EXPECT_TRUE(at::equal(ApplyRotary(x16, c16, c16), x16 * c16 + RotateHalf(x16) * c16));
}

}  // namespace
}  // namespace triad
