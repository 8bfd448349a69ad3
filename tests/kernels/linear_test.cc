// Checks every linear kernel path this CPU can run against a double-precision reference over
// a grid of shapes chosen to hit each tail: in_features around the 8/16-lane widths, output
// counts around the 2- and 4-output tiles, row counts around the 4-row tile.
#include "model/kernels/linear.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "model/kernels/bf16.h"
#include "model/kernels/kernels_internal.h"
#include "tests/kernels/random_weights.h"

namespace triad::kernels {
namespace internal {
// Readable parameters in gtest failure messages.
void PrintTo(Isa isa, std::ostream* os) { *os << IsaName(isa); }
}  // namespace internal
namespace {

using internal::Isa;
using internal::LinearArgs;

using test_inputs::RandomFloats;
using test_inputs::RandomWeights;

// One problem with its inputs; runs a kernel and compares with a double-precision reference.
// Tolerance: fp32 accumulation in up to ~16-way split chains errs by well under
// 1e-5 * sum|x_i * w_i|; the bias adds one more rounding.
template <typename W>
struct Problem {
  int64_t num_rows, in_features, out_features;
  bool with_bias;
  std::vector<float> x, bias;
  std::vector<W> w;

  Problem(int64_t rows, int64_t in, int64_t out, bool bias_on, uint32_t seed)
      : num_rows(rows), in_features(in), out_features(out), with_bias(bias_on) {
    std::mt19937 rng(seed);
    x = RandomFloats(rows * in, rng);
    w = RandomWeights<W>(out * in, rng);
    if (bias_on) bias = RandomFloats(out, rng);
  }

  LinearArgs<W> Args(float* y) const {
    return {x.data(), num_rows,    w.data(),    with_bias ? bias.data() : nullptr,
            y,        in_features, out_features};
  }

  // Returns "" when every output is within tolerance, else a description of the first miss.
  std::string Check(const std::vector<float>& y) const {
    for (int64_t m = 0; m < num_rows; ++m) {
      for (int64_t o = 0; o < out_features; ++o) {
        double sum = with_bias ? bias[o] : 0.0, magnitude = with_bias ? std::fabs(bias[o]) : 0.0;
        for (int64_t i = 0; i < in_features; ++i) {
          const double term = double{x[m * in_features + i]} * Widen(w[o * in_features + i]);
          sum += term;
          magnitude += std::fabs(term);
        }
        const double got = y[m * out_features + o];
        if (!(std::fabs(got - sum) <= 1e-5 * magnitude + 1e-30)) {
          return "rows=" + std::to_string(num_rows) + " in=" + std::to_string(in_features) +
                 " out=" + std::to_string(out_features) + " bias=" + std::to_string(with_bias) +
                 ": y[" + std::to_string(m) + "," + std::to_string(o) + "]=" + std::to_string(got) +
                 " want " + std::to_string(sum);
        }
      }
    }
    return "";
  }

  std::string RunAndCheck(Isa isa) const {
    std::vector<float> y(num_rows * out_features, NAN);
    internal::LinearWithIsa(isa, Args(y.data()));
    return Check(y);
  }
};

class LinearTest : public testing::TestWithParam<std::tuple<Isa, int>> {
 protected:
  void SetUp() override {
    if (!internal::CpuSupports(isa())) {
      GTEST_SKIP() << "CPU lacks " << internal::IsaName(isa());
    }
    at::set_num_threads(std::get<1>(GetParam()));
  }
  Isa isa() const { return std::get<0>(GetParam()); }

  template <typename W>
  void CheckGrid() {
    uint32_t seed = 1;
    // The AVX-512 rows-in-lanes tiles take rows 12 to 16 and, in groups of 16, 25 on, the
    // groups in pairs (25: one pair, its second group partial; 40: a pair and a partial single
    // group; 64: two pairs; 80: two pairs and a single group; 88: three pairs, the last one's
    // second group partial); out = 37 is four tiles of 8 outputs, one of 4 and one of 1 at
    // 12 to 16 rows, two tiles of 16 and five outputs of 4x4 tiles from 25 rows; in = 300 is
    // a chunk of 256 in-features and a ragged one.
    for (int64_t in : {1, 7, 8, 15, 16, 17, 64, 100, 300, 2048 + 3}) {
      for (int64_t out : {1, 3, 4, 5, 33, 37}) {
        for (int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 24, 25, 40, 64, 80, 88}) {
          for (bool bias : {false, true}) {
            const std::string miss = Problem<W>(rows, in, out, bias, seed++).RunAndCheck(isa());
            ASSERT_EQ(miss, "");
          }
        }
      }
    }
  }

  // Big enough that the grain lets two threads split it, with a ragged last block; 67 rows
  // as prefill runs them where LinearF32PreferredMaxRows() is unbounded.
  template <typename W>
  void CheckLarge() {
    for (int64_t rows : {1, 5, 12, 16, 67}) {
      ASSERT_EQ(Problem<W>(rows, 2048 + 3, 1031, true, 7).RunAndCheck(isa()), "");
    }
    // Past 1024 rows the AVX-512 rows-in-lanes path goes in slices of 1024 rows (the last one
    // here of 76 rows, or of 10, which take the 4x4 tiles).
    for (int64_t rows : {1100, 1034}) {
      ASSERT_EQ(Problem<W>(rows, 100, 37, true, 9).RunAndCheck(isa()), "");
    }
  }
};

TEST_P(LinearTest, F32Grid) { CheckGrid<float>(); }
TEST_P(LinearTest, Bf16Grid) { CheckGrid<uint16_t>(); }
TEST_P(LinearTest, F32Large) { CheckLarge<float>(); }
TEST_P(LinearTest, Bf16Large) { CheckLarge<uint16_t>(); }

// Vector loads must not assume alignment: weights and activations offset by one element.
TEST_P(LinearTest, UnalignedPointers) {
  Problem<uint16_t> p(3, 101, 9, true, 11);
  p.x.insert(p.x.begin(), 0.0f);
  p.w.insert(p.w.begin(), 0);
  std::vector<float> y(3 * 9, NAN);
  LinearArgs<uint16_t> args = p.Args(y.data());
  args.x += 1;
  args.w += 1;
  internal::LinearWithIsa(isa(), args);
  p.x.erase(p.x.begin());
  p.w.erase(p.w.begin());
  EXPECT_EQ(p.Check(y), "");
}

TEST_P(LinearTest, ZeroInFeaturesGivesBias) {
  const std::vector<float> bias = {1.5f, -2.0f, 0.25f};
  std::vector<float> y(2 * 3, NAN);
  internal::LinearWithIsa(isa(),
                          LinearArgs<float>{nullptr, 2, nullptr, bias.data(), y.data(), 0, 3});
  EXPECT_EQ(y, (std::vector<float>{1.5f, -2.0f, 0.25f, 1.5f, -2.0f, 0.25f}));
}

TEST_P(LinearTest, EmptyProblemsWriteNothing) {
  const std::vector<float> x(8, 1.0f), w(8, 1.0f);
  std::vector<float> y(1, 42.0f);
  internal::LinearWithIsa(isa(), LinearArgs<float>{x.data(), 0, w.data(), nullptr, y.data(), 8, 1});
  internal::LinearWithIsa(isa(), LinearArgs<float>{x.data(), 1, w.data(), nullptr, y.data(), 8, 0});
  EXPECT_EQ(y[0], 42.0f);
}

std::string ParamName(const testing::TestParamInfo<std::tuple<Isa, int>>& info) {
  return std::string(internal::IsaName(std::get<0>(info.param))) + "_threads" +
         std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllIsas, LinearTest,
                         testing::Combine(testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                                          testing::Values(1, 2)),
                         ParamName);

// LinearBf16Bf16: bf16 activations (the x of a Problem rounded to bf16, so that the reference
// over the widened x is exact) against bf16 weights, through the pairs kernel where the CPU has
// AVX512_BF16 (12 to 16 rows; elsewhere it widens) and through the widening path. Rows 12 and
// 16 bound the pairs kernel, 11 and 17 widen; odd in_features pair the last one with zero; out
// = 37 is four tiles of 8, one of 4 and one of 1. Same tolerance as the fp32 kernels.
class LinearBf16Bf16Test : public testing::TestWithParam<std::tuple<bool, int>> {};

TEST_P(LinearBf16Bf16Test, MatchesReference) {
  const bool pairs = std::get<0>(GetParam());
  if (pairs && !internal::CpuSupportsBf16Pairs()) GTEST_SKIP() << "CPU lacks AVX512_BF16";
  at::set_num_threads(std::get<1>(GetParam()));
  uint32_t seed = 100;
  for (int64_t in : {1, 2, 3, 31, 32, 33, 300, 2048 + 3}) {
    for (int64_t out : {1, 5, 8, 37}) {
      for (int64_t rows : {1, 11, 12, 13, 16, 17}) {
        for (bool bias : {false, true}) {
          Problem<uint16_t> p(rows, in, out, bias, seed++);
          std::vector<uint16_t> x(p.x.size());
          for (size_t i = 0; i < x.size(); ++i) {
            x[i] = FloatToBf16(p.x[i]);
            p.x[i] = Bf16ToFloat(x[i]);
          }
          std::vector<float> y(static_cast<size_t>(rows * out), NAN);
          internal::LinearBf16Bf16WithPairs(
              pairs, LinearArgs<uint16_t, uint16_t>{x.data(), rows, p.w.data(),
                                                    bias ? p.bias.data() : nullptr, y.data(), in,
                                                    out});
          ASSERT_EQ(p.Check(y), "");
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(PairsAndWidening, LinearBf16Bf16Test,
                         testing::Combine(testing::Bool(), testing::Values(1, 2)),
                         [](const testing::TestParamInfo<std::tuple<bool, int>>& info) {
                           return std::string(std::get<0>(info.param) ? "pairs" : "widening") +
                                  "_threads" + std::to_string(std::get<1>(info.param));
                         });

// The public entry points are the best ISA's kernels; one shape is enough to show the wiring.
TEST(LinearPublicTest, MatchesReference) {
  at::set_num_threads(2);
  const Problem<float> f32(5, 300, 70, true, 21);
  std::vector<float> y(5 * 70, NAN);
  LinearF32(f32.x.data(), 5, f32.w.data(), f32.bias.data(), y.data(), 300, 70);
  EXPECT_EQ(f32.Check(y), "");
  const Problem<uint16_t> bf16(1, 300, 70, false, 22);
  LinearBf16(bf16.x.data(), 1, bf16.w.data(), nullptr, y.data(), 300, 70);
  EXPECT_EQ(bf16.Check(y), "");
  Problem<uint16_t> both(14, 300, 70, true, 23);
  std::vector<uint16_t> x(both.x.size());
  for (size_t i = 0; i < x.size(); ++i) both.x[i] = Bf16ToFloat(x[i] = FloatToBf16(both.x[i]));
  std::vector<float> y14(14 * 70, NAN);
  LinearBf16Bf16(x.data(), 14, both.w.data(), both.bias.data(), y14.data(), 300, 70);
  EXPECT_EQ(both.Check(y14), "");
}

TEST(LinearPublicTest, KernelIsaNamesTheBestSupportedIsa) {
  EXPECT_EQ(KernelIsa(), internal::IsaName(internal::BestIsa()));
  EXPECT_TRUE(internal::CpuSupports(internal::BestIsa()));
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_NE(KernelIsa(), "scalar");
  }
#endif
}

}  // namespace
}  // namespace triad::kernels
