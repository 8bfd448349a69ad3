// KV-cache correctness: prefill + one-token steps equal a full recomputation, for every
// fixture model; the CPU kernel path equals the ATen path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "model/generation.h"
#include "model/layers.h"
#include "model/model.h"
#include "tests/model/fixture_util.h"

namespace triad {
namespace {

at::Tensor RandomIds(int64_t batch, int64_t len, int64_t vocab, uint64_t seed) {
  return testing::RandomTokenIds({batch, len}, vocab, seed);
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
  testing::ForEachFixtureModel(LoadOptions(), [&](const Model& m) {
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
  });
}

TEST(KvCacheTest, CpuKernelsMatchAtenPath) {
  for (const std::string dtype : {"float32", "bfloat16"}) {
    LoadOptions options;
    options.dtype = dtype;
    auto model = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/llama-tiny", options);
    ASSERT_TRUE(model.ok()) << model.status();
    const at::Tensor ids = RandomIds(1, 15, (*model)->config().vocab_size, 3);
    // The logits of a 14-row prefill step (with AVX-512 the rows-in-lanes tiles; in bf16 with
    // AVX512_BF16 the bf16-pair kernel) and of the one-row step after it.
    auto run = [&](bool kernels) {
      SetUseCpuKernels(kernels);
      auto state = NewState(**model, ids);
      const at::Tensor prefill = RunStep(**model, *state, ids.narrow(1, 0, 14));
      return std::make_pair(prefill, RunStep(**model, *state, ids.narrow(1, 14, 1)));
    };
    const auto aten = run(false), kernels = run(true);
    SetUseCpuKernels(true);
    for (const auto& [got, want] : {std::make_pair(kernels.first, aten.first),
                                    std::make_pair(kernels.second, aten.second)}) {
      // fp32: summation order only. bf16: activations are rounded to bf16 at different points.
      const double tol = dtype == "float32" ? testing::FixtureTolerance(want)
                                            : 0.05 * std::max(1.0, want.abs().max().item<double>());
      EXPECT_LE(testing::MaxAbsDiff(got, want), tol) << dtype;
    }
  }
}

// options.check runs before every step; its first error stops the search and is returned.
TEST(GenerationTest, CheckStopsGreedyAndBeamSearchBeforeTheNextStep) {
  auto model = LoadModel(testing::ModelFixtureRoot() + "/llama-tiny", LoadOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  for (int64_t beams : {1, 4}) {
    SCOPED_TRACE(beams);
    GenerationOptions options;
    options.max_new_tokens = 20;
    options.num_beams = beams;
    int calls = 0;
    options.check = [&calls]() -> absl::Status {
      return ++calls > 3 ? absl::CancelledError("stop") : absl::OkStatus();
    };
    const at::Tensor prompt = at::tensor({1, 5, 6, 7}, at::kLong).view({1, -1});
    auto out = Generate(**model, {prompt, at::Tensor()}, options);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(calls, 4);  // three steps ran, the fourth was refused
    options.check = [] { return absl::OkStatus(); };
    EXPECT_TRUE(Generate(**model, {prompt, at::Tensor()}, options).ok());
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

namespace triad {
namespace {

// Decoder-only beam search has no HF fixture here, so it is checked against its definition:
// each returned sequence's score equals the teacher-forced sum of its generated tokens'
// log-probabilities divided by generated_len^length_penalty (generated_len counts eos), within
// 1e-4 relative; sequences come back best first.
TEST(GenerationTest, DecoderOnlyBeamScoresEqualTeacherForcing) {
  for (const char* name : {"llama-tiny", "gpt1-tiny"}) {
    SCOPED_TRACE(name);
    auto model = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/" + name, LoadOptions());
    ASSERT_TRUE(model.ok()) << model.status();
    const Model& m = **model;
    const at::Tensor prompt = RandomIds(1, 5, m.config().vocab_size, 11);
    for (const double penalty : {1.0, 0.5}) {
      GenerationOptions options;
      options.max_new_tokens = 8;
      options.num_beams = 3;
      options.num_return_sequences = 3;
      options.length_penalty = penalty;
      options.early_stopping = EarlyStopping::kTrue;
      auto out = Generate(m, {prompt, at::Tensor()}, options);
      ASSERT_TRUE(out.ok()) << out.status();
      ASSERT_EQ(out->sequences.size(0), 3);
      for (int64_t r = 0; r < 3; ++r) {
        at::Tensor seq = out->sequences[r];
        int64_t len = seq.size(0);
        // A hypothesis closed by eos ends at its first eos; the rest is padding.
        for (int64_t t = out->prompt_length; t < seq.size(0); ++t) {
          const int64_t id = seq[t].item<int64_t>();
          const auto& eos = m.config().eos_token_ids;
          if (std::find(eos.begin(), eos.end(), id) != eos.end()) {
            len = t + 1;
            break;
          }
        }
        seq = seq.narrow(0, 0, len).unsqueeze(0);
        auto state = NewState(m, seq);
        const at::Tensor logprobs = at::log_softmax(RunStep(m, *state, seq), -1)[0];
        double sum = 0;
        for (int64_t t = out->prompt_length; t < len; ++t) {
          sum += logprobs[t - 1][seq[0][t].item<int64_t>()].item<double>();
        }
        const double expected = sum / std::pow(static_cast<double>(len - out->prompt_length), penalty);
        const double actual = out->sequences_scores[r].item<double>();
        EXPECT_NEAR(actual, expected, 1e-4 * std::abs(expected)) << "row " << r;
        if (r > 0) {
          EXPECT_LE(actual, out->sequences_scores[r - 1].item<double>());
        }
      }
    }
  }
}

}  // namespace
}  // namespace triad
