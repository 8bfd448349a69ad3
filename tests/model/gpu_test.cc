// The model fixtures on a CUDA device (label gpu): float32 must match transformers within the
// fixture tolerance, as on the CPU; bfloat16 is reported. Skips when this LibTorch has no CUDA.
#include <gtest/gtest.h>

#include <cstdio>

#include "model/compat.h"
#include "model/model.h"
#include "tests/model/fixture_runner.h"
#include "tests/model/ragged_check.h"

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
  testing::ExpectFloat32Parity(Cuda("float32"));
}

// The scheduler's ragged path on the GPU: paged KV, decode as one padded gather per layer.
TEST(GpuRagged, ChunkedMixedBatchEqualsEachSequenceAlone) {
  if (!compat::HasCuda()) GTEST_SKIP() << "no CUDA device visible to this LibTorch";
  testing::ExpectRaggedEqualsAlone(Cuda("float32"));
}

TEST(GpuRagged, ForkedSequencesEqualFreshOnes) {
  if (!compat::HasCuda()) GTEST_SKIP() << "no CUDA device visible to this LibTorch";
  testing::ExpectForksEqualFresh(Cuda("float32"));
}

TEST(GpuFixtures, Bfloat16WithinBounds) {
  if (!compat::HasCuda()) GTEST_SKIP() << "no CUDA device visible to this LibTorch";
  testing::ExpectBfloat16WithinBounds(Cuda("bfloat16"), "cuda bf16");
}

// Decode steps replayed from CUDA graphs give ForwardChunks' logits; every bucket captures.
// Last: capture is this binary's riskiest step on a new GPU stack, so a crash here loses no
// other result.
TEST(GpuRagged, DecodeGraphsEqualForwardChunks) {
  if (!compat::HasCuda()) GTEST_SKIP() << "no CUDA device visible to this LibTorch";
  testing::ExpectDecodeGraphsEqualChunks(Cuda("float32"), DecodeGraphRunner::Mode::kCapture);
}

}  // namespace
}  // namespace triad
