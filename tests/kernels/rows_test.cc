// The row kernels of rows.h on every ISA this CPU runs, against a double-precision reference
// over row counts around the 4-, 8- and 16-row tiles and dimensions around the 8/16-lane
// widths. Tolerance: float32 sums of at most 80 products of magnitude <= 1 err by well under
// 1e-5 * sum|products|. The softmax: each probability within 1e-6 relative of exp in double
// over the same float32 shifted scores (float32 exp within ~2 ulp, a sum of at most 100
// positive terms, one division: a few 1e-7).
#include "model/kernels/rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "model/kernels/bf16.h"
#include "model/kernels/kernels_internal.h"
#include "tests/kernels/random_weights.h"

namespace triad::kernels {
namespace {

using internal::Isa;

using test_inputs::RandomFloats;
using test_inputs::RandomWeights;

class RowsTest : public testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!internal::CpuSupports(GetParam())) {
      GTEST_SKIP() << "CPU lacks " << internal::IsaName(GetParam());
    }
  }

  template <typename W>
  void CheckDot() {
    std::mt19937 rng(5);
    for (int64_t dim : {1, 7, 8, 15, 16, 17, 64, 80}) {
      for (int64_t n : {0, 1, 3, 4, 5, 8, 16, 17, 25, 32, 40}) {
        const std::vector<float> q = RandomFloats(dim, rng);
        const std::vector<W> rows = RandomWeights<W>(n * dim, rng);
        std::vector<float> out(static_cast<size_t>(n) + 1, 42.0f);
        internal::DotRowsWithIsa(GetParam(), q.data(), rows.data(), n, dim, out.data());
        for (int64_t i = 0; i < n; ++i) {
          double sum = 0, magnitude = 0;
          for (int64_t d = 0; d < dim; ++d) {
            const double product = double{q[d]} * Widen(rows[i * dim + d]);
            sum += product;
            magnitude += std::fabs(product);
          }
          EXPECT_NEAR(out[i], sum, 1e-5 * magnitude + 1e-30)
              << "row " << i << " of " << n << ", dim " << dim;
        }
        EXPECT_EQ(out[n], 42.0f) << "wrote past row " << n;
      }
    }
  }

  template <typename W>
  void CheckAxpy() {
    std::mt19937 rng(6);
    for (int64_t dim : {1, 7, 8, 15, 16, 17, 64, 80}) {
      for (int64_t n : {0, 1, 3, 4, 5, 16}) {
        const std::vector<float> p = RandomFloats(n, rng);
        const std::vector<W> rows = RandomWeights<W>(n * dim, rng);
        std::vector<float> acc = RandomFloats(dim + 1, rng);
        const std::vector<float> before = acc;
        internal::AxpyRowsWithIsa(GetParam(), p.data(), rows.data(), n, dim, acc.data());
        for (int64_t d = 0; d < dim; ++d) {
          double sum = before[d], magnitude = std::fabs(before[d]);
          for (int64_t i = 0; i < n; ++i) {
            const double product = double{p[i]} * Widen(rows[i * dim + d]);
            sum += product;
            magnitude += std::fabs(product);
          }
          EXPECT_NEAR(acc[d], sum, 1e-5 * magnitude + 1e-30)
              << "element " << d << " of " << dim << ", " << n << " rows";
        }
        EXPECT_EQ(acc[dim], before[dim]) << "wrote past element " << dim;
      }
    }
  }
};

// Scores of a few magnitudes, scaled and biased or not, at lengths around the 16-lane vector;
// every probability against double precision, and nothing written past n.
TEST_P(RowsTest, ScaledSoftmax) {
  std::mt19937 rng(7);
  for (int64_t n : {1, 2, 15, 16, 17, 31, 32, 33, 100}) {
    for (const float magnitude : {0.01f, 1.0f, 30.0f}) {
      for (const bool with_bias : {false, true}) {
        for (const float scale : {1.0f, 0.125f}) {
          std::vector<float> scores = RandomFloats(n + 1, rng);
          for (float& s : scores) s *= magnitude;
          const std::vector<float> bias = RandomFloats(n, rng);
          const std::vector<float> before = scores;
          internal::ScaledSoftmaxWithIsa(GetParam(), scores.data(), n, scale,
                                         with_bias ? bias.data() : nullptr);
          // The shifted scores z - max z as float32 computes them (each rounding there moves
          // exp(z - max) by |z - max| x 6e-8 relative, beyond 1e-6 at magnitude 30 on any
          // path), then the exponentials and their sum in double.
          std::vector<float> zf(static_cast<size_t>(n));
          float top = -std::numeric_limits<float>::infinity();
          for (int64_t i = 0; i < n; ++i) {
            zf[i] = scale != 1.0f ? before[i] * scale : before[i];
            if (with_bias) zf[i] += bias[i];
            top = std::max(top, zf[i]);
          }
          std::vector<double> z(static_cast<size_t>(n));
          double sum = 0;
          for (int64_t i = 0; i < n; ++i) sum += (z[i] = std::exp(double{zf[i] - top}));
          for (int64_t i = 0; i < n; ++i) {
            EXPECT_NEAR(scores[i], z[i] / sum, 1e-6 * z[i] / sum + 1e-30)
                << "score " << i << " of " << n << ", magnitude " << magnitude << ", scale "
                << scale << (with_bias ? ", biased" : "");
          }
          EXPECT_EQ(scores[n], before[n]) << "wrote past score " << n;
        }
      }
    }
  }
}

// Scores far apart: the exponentials of the distant ones underflow to exactly 0 (as
// std::exp's do), an infinite bias masks a position, and a NaN score makes every
// probability NaN.
TEST_P(RowsTest, ScaledSoftmaxExtremes) {
  std::vector<float> scores = {0.0f, -200.0f, -90.0f, 1.0f};
  const std::vector<float> bias = {0.0f, 0.0f, 0.0f, -std::numeric_limits<float>::infinity()};
  internal::ScaledSoftmaxWithIsa(GetParam(), scores.data(), 4, 1.0f, bias.data());
  EXPECT_EQ(scores[0], 1.0f);
  EXPECT_EQ(scores[1], 0.0f);
  EXPECT_EQ(scores[2], std::exp(-90.0f));  // subnormal, from both exps alike
  EXPECT_EQ(scores[3], 0.0f);
  std::vector<float> with_nan = {0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  internal::ScaledSoftmaxWithIsa(GetParam(), with_nan.data(), 3, 1.0f, nullptr);
  for (float p : with_nan) EXPECT_TRUE(std::isnan(p));
}

TEST_P(RowsTest, DotF32) { CheckDot<float>(); }
TEST_P(RowsTest, DotBf16) { CheckDot<uint16_t>(); }
TEST_P(RowsTest, AxpyF32) { CheckAxpy<float>(); }
TEST_P(RowsTest, AxpyBf16) { CheckAxpy<uint16_t>(); }

// The public functions are the best ISA's.
TEST(RowsPublicTest, MatchTheBestIsa) {
  const std::vector<float> q = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
  std::vector<float> rows(2 * 17);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 5) - 2;
  std::vector<float> out(2), expected(2);
  DotRowsF32(q.data(), rows.data(), 2, 17, out.data());
  internal::DotRowsWithIsa(internal::BestIsa(), q.data(), rows.data(), 2, 17, expected.data());
  EXPECT_EQ(out, expected);
  std::vector<uint16_t> bf16(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) bf16[i] = FloatToBf16(rows[i]);
  DotRowsBf16(q.data(), bf16.data(), 2, 17, out.data());
  EXPECT_EQ(out, expected);  // small integers: exact in bf16 and in any summation order
  std::vector<float> acc(17, 1.0f), acc16(17, 1.0f);
  const std::vector<float> p = {0.5f, -2.0f};
  AxpyRowsF32(p.data(), rows.data(), 2, 17, acc.data());
  AxpyRowsBf16(p.data(), bf16.data(), 2, 17, acc16.data());
  for (int64_t d = 0; d < 17; ++d) {
    EXPECT_EQ(acc[d], 1.0f + 0.5f * rows[d] - 2.0f * rows[17 + d]) << d;
  }
  EXPECT_EQ(acc16, acc);
}

std::string IsaParamName(const testing::TestParamInfo<Isa>& info) {
  return std::string(internal::IsaName(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllIsas, RowsTest,
                         testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512), IsaParamName);

}  // namespace
}  // namespace triad::kernels
