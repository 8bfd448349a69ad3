// KV-cache correctness: prefill + one-token steps equal a full recomputation, for every
// fixture model; the CPU kernel path equals the ATen path.
#include <gtest/gtest.h>

#include "model/generation.h"
#include "model/layers.h"
#include "model/model.h"
#include "tests/model/fixture_util.h"

namespace triad {
namespace {

at::Tensor RandomIds(int64_t batch, int64_t len, int64_t vocab, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return at::randint(3, vocab, {batch, len}, gen, at::kLong);
}

std::unique_ptr<DecoderState> NewState(const Model& model, const at::Tensor& encoder_ids) {
  EncoderInput enc{encoder_ids, at::Tensor()};
  auto state = model.NewState(encoder_ids.size(0), model.config().is_encoder_decoder() ? &enc : nullptr);
  EXPECT_TRUE(state.ok()) << state.status();
  return std::move(state).value();
}

at::Tensor RunStep(const Model& model, DecoderState& state, const at::Tensor& ids) {
  StepInput step;
  step.input_ids = ids;
  auto logits = model.Forward(step, state);
  EXPECT_TRUE(logits.ok()) << logits.status();
  return logits.ok() ? *logits : at::Tensor();
}

// Tolerance: the fixture tolerance, 1e-4 * max(1, max|full|).
TEST(KvCacheTest, StepwiseDecodingEqualsFullRecomputation) {
  for (const std::string& folder : testing::ModelFixtureFolders(testing::ModelFixtureRoot())) {
    SCOPED_TRACE(folder);
    auto model = LoadModel(folder, LoadOptions());
    ASSERT_TRUE(model.ok()) << model.status();
    const Model& m = **model;
    const int64_t vocab = m.config().vocab_size;
    const at::Tensor encoder_ids = RandomIds(2, 7, vocab, 1);
    const at::Tensor ids = RandomIds(2, 9, vocab, 2);
    auto full_state = NewState(m, encoder_ids);
    const at::Tensor full = RunStep(m, *full_state, ids);
    auto state = NewState(m, encoder_ids);
    std::vector<at::Tensor> parts = {RunStep(m, *state, ids.narrow(1, 0, 4))};
    for (int64_t t = 4; t < ids.size(1); ++t) parts.push_back(RunStep(m, *state, ids.narrow(1, t, 1)));
    const at::Tensor stepwise = at::cat(parts, 1);
    EXPECT_EQ(state->length(), ids.size(1));
    EXPECT_LE(testing::MaxAbsDiff(stepwise, full), testing::FixtureTolerance(full));
  }
}

TEST(KvCacheTest, CpuKernelsMatchAtenPath) {
  for (const std::string dtype : {"float32", "bfloat16"}) {
    LoadOptions options;
    options.dtype = dtype;
    auto model = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/llama-tiny", options);
    ASSERT_TRUE(model.ok()) << model.status();
    const at::Tensor ids = RandomIds(1, 6, (*model)->config().vocab_size, 3);
    auto decode = [&](bool kernels) {
      SetUseCpuKernels(kernels);
      auto state = NewState(**model, ids);
      RunStep(**model, *state, ids.narrow(1, 0, 5));
      return RunStep(**model, *state, ids.narrow(1, 5, 1));  // one-row step: the kernel path
    };
    const at::Tensor aten = decode(false), kernels = decode(true);
    SetUseCpuKernels(true);
    // fp32: summation order only. bf16: activations are rounded to bf16 at different points.
    const double tol = dtype == "float32" ? testing::FixtureTolerance(aten)
                                          : 0.05 * std::max(1.0, aten.abs().max().item<double>());
    EXPECT_LE(testing::MaxAbsDiff(kernels, aten), tol) << dtype;
  }
}

TEST(GenerationTest, RejectsBadOptions) {
  auto model = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/llama-tiny", LoadOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  const at::Tensor ids = RandomIds(1, 4, 1000, 4);
  GenerationOptions options;
  options.max_new_tokens = 0;
  EXPECT_EQ(Generate(**model, {ids, at::Tensor()}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.max_new_tokens = 4;
  options.num_beams = 2;
  options.num_return_sequences = 3;
  EXPECT_EQ(Generate(**model, {ids, at::Tensor()}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.num_return_sequences = 1;
  const at::Tensor bad = at::full({1, 3}, 5000, at::kLong);
  auto status = Generate(**model, {bad, at::Tensor()}, options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("input_ids"), std::string::npos) << status;
  // Past the context length (256 positions).
  options.num_beams = 1;
  options.max_new_tokens = 300;
  status = Generate(**model, {ids, at::Tensor()}, options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

}  // namespace
}  // namespace triad
