// The model fixtures on a CUDA device (label gpu): float32 must match transformers within the
// fixture tolerance, as on the CPU; bfloat16 is reported. Skips when this LibTorch has no CUDA.
#include <gtest/gtest.h>

#include <cstdio>

#include "model/compat.h"
#include "model/model.h"
#include "tests/model/fixture_runner.h"

namespace triad {
namespace {

LoadOptions Cuda(const std::string& dtype) {
  LoadOptions options;
  options.device = "cuda";
  options.dtype = dtype;
  return options;
}

TEST(GpuFixtures, Float32MatchesTransformers) {
  if (!compat::HasCuda()) GTEST_SKIP() << "no CUDA device visible to this LibTorch";
  int checked = 0;
  testing::ForEveryCase(Cuda("float32"), [&](const std::string& where, const ModelConfig&,
                                              const testing::Measurement& m) {
    ++checked;
    if (m.is_ids) {
      EXPECT_TRUE(m.ids_equal) << where << ": " << m.what << " differ";
    } else {
      EXPECT_LE(m.diff, m.tolerance) << where << ": " << m.what;
    }
  });
  EXPECT_GT(checked, 0);
}

TEST(GpuFixtures, Bfloat16Report) {
  if (!compat::HasCuda()) GTEST_SKIP() << "no CUDA device visible to this LibTorch";
  testing::ForEveryCase(Cuda("bfloat16"), [&](const std::string& where, const ModelConfig& config,
                                               const testing::Measurement& m) {
    if (m.is_ids) {
      std::printf("[cuda bf16] %-40s %-20s token agreement %.3f\n", where.c_str(), m.what.c_str(),
                  m.agreement);
      return;
    }
    const double scale = m.tolerance / 1e-4;
    std::printf("[cuda bf16] %-40s %-20s %.4f of max(1,|expected|)\n", where.c_str(),
                m.what.c_str(), m.diff / scale);
    if (m.what == "sequences_scores" || m.what == "step_logits") return;
    EXPECT_LE(m.diff, (config.family == Family::kT5 ? 0.5 : 0.1) * scale) << where;
  });
}

}  // namespace
}  // namespace triad
