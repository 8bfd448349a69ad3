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

LoadOptions WithDtype(const std::string& dtype) {
  LoadOptions options;
  options.dtype = dtype;
  return options;
}

TEST(ModelFixtures, Float32MatchesTransformers) {
  testing::ExpectFloat32Parity(WithDtype("float32"));
}

TEST(ModelFixtures, Bfloat16WithinTolerance) {
  testing::ExpectBfloat16WithinBounds(WithDtype("bfloat16"), "bf16");
}

}  // namespace
}  // namespace triad
