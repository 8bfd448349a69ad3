// Data-driven parity with Hugging Face transformers: every case of every folder under
// tests/data/models (or $TRIAD_MODEL_FIXTURES) is run in float32 and must match within
// 1e-4 * max(1, max|expected|) (token ids exactly; beam scores within 1e-5 relative). The same
// cases in bfloat16 report their deviation and token agreement and assert a bf16 tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "model/model.h"
#include "tests/model/fixture_runner.h"

namespace triad {
namespace {

using testing::CaseCheck;
using testing::ForEveryCase;
using testing::Measurement;

LoadOptions WithDtype(const std::string& dtype) {
  LoadOptions options;
  options.dtype = dtype;
  return options;
}

TEST(ModelFixtures, Float32MatchesTransformers) {
  int checked = 0;
  ForEveryCase(WithDtype("float32"), [&](const std::string& where, const ModelConfig&, const Measurement& m) {
    ++checked;
    if (m.is_ids) {
      EXPECT_TRUE(m.ids_equal) << where << ": " << m.what << " differ";
    } else {
      EXPECT_LE(m.diff, m.tolerance) << where << ": " << m.what;
    }
  });
  EXPECT_GT(checked, 0);
}

// bfloat16 rounds every weight and activation to 8 significant bits, so exact parity is not
// expected. Float outputs must stay within 0.1 * max(1, max|expected|) for decoder-only models
// (measured: <= 0.06) and 0.5 * max(1, max|expected|) for T5 (measured: <= 0.34; the tiny T5
// logits are O(1) differences of large dot products, so bf16 cancellation dominates); token
// agreement is reported, not asserted (a bf16 top-2 gap of 1e-3 is below bf16 resolution).
TEST(ModelFixtures, Bfloat16WithinTolerance) {
  double worst = 0;
  double ids_total = 0, ids_agree = 0;
  ForEveryCase(WithDtype("bfloat16"), [&](const std::string& where, const ModelConfig& config,
                               const Measurement& m) {
    if (m.is_ids) {
      ids_total += 1;
      ids_agree += m.agreement;
      std::printf("[bf16] %-40s %-20s token agreement %.3f\n", where.c_str(), m.what.c_str(),
                  m.agreement);
      return;
    }
    if (m.what == "sequences_scores" || m.what == "step_logits") return;  // depend on ids
    const double scale = m.tolerance / 1e-4;
    worst = std::max(worst, m.diff / scale);
    std::printf("[bf16] %-40s %-20s max|diff| %.4g (%.4f of max(1,|expected|))\n", where.c_str(),
                m.what.c_str(), m.diff, m.diff / scale);
    const double bound = config.family == Family::kT5 ? 0.5 : 0.1;
    EXPECT_LE(m.diff, bound * scale) << where << ": " << m.what;
  });
  std::printf("[bf16] worst relative deviation %.4f, mean token agreement %.3f\n", worst,
              ids_total > 0 ? ids_agree / ids_total : 1.0);
}

}  // namespace
}  // namespace triad
