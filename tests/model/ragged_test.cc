// Continuous batching: sequences of different lengths advanced together by ForwardChunks
// (chunked prefill mixed with decode tokens) give, for every chunk, the logits each sequence
// gets alone through the batch API. Tolerance: 1e-4 * max(1, max|alone|) (summation order).
#include <gtest/gtest.h>

#include <limits>

#include "model/layers.h"
#include "model/model.h"
#include "tests/model/fixture_util.h"

namespace triad {
namespace {

at::Tensor Ids(int64_t len, int64_t vocab, uint64_t seed) {
  return testing::RandomTokenIds({len}, vocab, seed);
}

// Logits [T, V] of `tokens` run alone (T5: decoder tokens after encoding `encoder`).
at::Tensor Alone(const Model& m, const at::Tensor& tokens, const at::Tensor& encoder) {
  EncoderInput enc{encoder.view({1, -1}), at::Tensor()};
  auto state = m.NewState(1, m.config().is_encoder_decoder() ? &enc : nullptr);
  EXPECT_TRUE(state.ok()) << state.status();
  StepInput step;
  step.input_ids = tokens.view({1, -1});
  auto logits = m.Forward(step, **state);
  EXPECT_TRUE(logits.ok()) << logits.status();
  return (*logits)[0];
}

void CheckChunkedMixedBatchEqualsEachSequenceAlone() {
  for (const std::string& folder : testing::ModelFixtureFolders(testing::ModelFixtureRoot())) {
    SCOPED_TRACE(folder);
    auto model = LoadModel(folder, LoadOptions());
    ASSERT_TRUE(model.ok()) << model.status();
    const Model& m = **model;
    const int64_t vocab = m.config().vocab_size;
    const std::vector<int64_t> lengths = {9, 4, 13};
    // Steps as (sequence, number of new tokens): prefill chunks and decode tokens mixed.
    const std::vector<std::vector<std::pair<int, int64_t>>> schedule = {
        {{0, 4}, {1, 3}, {2, 5}}, {{2, 6}, {0, 3}, {1, 1}}, {{0, 1}, {2, 1}}, {{2, 1}, {0, 1}}};
    // Blocks of 4 positions: the sequences cross block boundaries mid-chunk.
    auto pool = m.NewKvPool(64, 4);
    ASSERT_TRUE(pool.ok()) << pool.status();
    // Stale contents: nothing outside a sequence's own positions may reach its attention.
    for (int64_t l = 0; l < (*pool)->shape().num_layers; ++l) {
      (*pool)->keys(l).fill_(std::numeric_limits<float>::quiet_NaN());
      (*pool)->values(l).fill_(std::numeric_limits<float>::quiet_NaN());
    }
    std::vector<at::Tensor> tokens, encoders, reference;
    std::vector<std::unique_ptr<SequenceState>> states;
    for (size_t s = 0; s < lengths.size(); ++s) {
      tokens.push_back(Ids(lengths[s], vocab, 10 + s));
      encoders.push_back(Ids(5 + 3 * s, vocab, 20 + s));
      reference.push_back(Alone(m, tokens[s], encoders[s]));
      auto seq = m.NewSequence(**pool, m.config().is_encoder_decoder() ? &encoders[s] : nullptr);
      ASSERT_TRUE(seq.ok()) << seq.status();
      states.push_back(*std::move(seq));
    }
    std::vector<int64_t> done(lengths.size(), 0);
    for (const auto& step : schedule) {
      std::vector<SequenceChunk> chunks;
      for (const auto& [s, n] : step) {
        chunks.push_back({states[s].get(), tokens[s].narrow(0, done[s], n)});
      }
      auto logits = m.ForwardChunks(chunks);
      ASSERT_TRUE(logits.ok()) << logits.status();
      ASSERT_EQ(logits->size(0), static_cast<int64_t>(step.size()));
      for (size_t c = 0; c < step.size(); ++c) {
        const auto [s, n] = step[c];
        done[s] += n;
        const at::Tensor expected = reference[s][done[s] - 1];
        EXPECT_LE(testing::MaxAbsDiff((*logits)[c], expected), testing::FixtureTolerance(expected))
            << "sequence " << s << " at position " << done[s] - 1;
        EXPECT_EQ(states[s]->length(), done[s]);
      }
    }
    // Sequence 0 holds 11 positions: 3 blocks (T5: + 2 for its 5 encoder positions).
    EXPECT_EQ(states[0]->blocks_held(), m.config().is_encoder_decoder() ? 5 : 3);
    int64_t held = 0;
    for (const auto& state : states) held += state->blocks_held();
    EXPECT_EQ((*pool)->used_blocks(), held);
    states.clear();
    EXPECT_EQ((*pool)->used_blocks(), 0);  // finished sequences return their blocks
  }
}

// Decode queries through the CPU paged kernel.
TEST(RaggedTest, ChunkedMixedBatchEqualsEachSequenceAlone) {
  CheckChunkedMixedBatchEqualsEachSequenceAlone();
}

// Decode queries as one padded batch gathered from the blocks (the path CUDA takes); the
// padding's keys are masked and zeroed, so stale pool contents cannot leak in.
TEST(RaggedTest, PaddedDecodePathEqualsEachSequenceAlone) {
  SetUseCpuKernels(false);
  CheckChunkedMixedBatchEqualsEachSequenceAlone();
  SetUseCpuKernels(true);
}

// NewSequences (T5: one padded encoder batch) gives each sequence what NewSequence gives it.
TEST(RaggedTest, NewSequencesEqualsEachNewSequence) {
  for (const std::string& folder : testing::ModelFixtureFolders(testing::ModelFixtureRoot())) {
    SCOPED_TRACE(folder);
    auto model = LoadModel(folder, LoadOptions());
    ASSERT_TRUE(model.ok()) << model.status();
    const Model& m = **model;
    const bool t5 = m.config().is_encoder_decoder();
    const int64_t vocab = m.config().vocab_size;
    std::vector<at::Tensor> encoders, tokens;
    std::vector<const at::Tensor*> encoder_ids;
    for (int64_t s = 0; s < 3; ++s) {
      encoders.push_back(Ids(5 + 3 * s, vocab, 30 + s));
      tokens.push_back(Ids(4, vocab, 40 + s));
    }
    for (const at::Tensor& e : encoders) encoder_ids.push_back(t5 ? &e : nullptr);
    auto pool = m.NewKvPool(64);
    ASSERT_TRUE(pool.ok()) << pool.status();
    auto together = m.NewSequences(**pool, encoder_ids);
    ASSERT_TRUE(together.ok()) << together.status();
    ASSERT_EQ(together->size(), 3u);
    std::vector<SequenceChunk> batched, single;
    std::vector<std::unique_ptr<SequenceState>> alone;
    for (size_t s = 0; s < 3; ++s) {
      auto seq = m.NewSequence(**pool, encoder_ids[s]);
      ASSERT_TRUE(seq.ok()) << seq.status();
      alone.push_back(*std::move(seq));
      batched.push_back({(*together)[s].get(), tokens[s]});
      single.push_back({alone[s].get(), tokens[s]});
      EXPECT_EQ((*together)[s]->blocks_held(), alone[s]->blocks_held()) << s;
    }
    auto a = m.ForwardChunks(batched), b = m.ForwardChunks(single);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_LE(testing::MaxAbsDiff(*a, *b), testing::FixtureTolerance(*b));
  }
  auto t5 = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/t5-tiny", LoadOptions());
  ASSERT_TRUE(t5.ok());
  const at::Tensor good = Ids(3, 100, 1), bad = at::tensor({5, 100000}, at::kLong);
  auto pool = (*t5)->NewKvPool(8);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto missing = (*t5)->NewSequences(**pool, {&good, nullptr});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  auto outside = (*t5)->NewSequences(**pool, {&good, &bad});
  EXPECT_NE(outside.status().message().find("encoder input_ids[1]"), std::string::npos)
      << outside.status();
}

TEST(RaggedTest, BadChunksNameTheField) {
  auto model = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/llama-tiny", LoadOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  auto pool = (*model)->NewKvPool(64);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto seq = (*model)->NewSequence(**pool, nullptr);
  ASSERT_TRUE(seq.ok());
  const at::Tensor ids = Ids(3, 1000, 1);
  auto twice = (*model)->ForwardChunks({{seq->get(), ids}, {seq->get(), ids}});
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(twice.status().message().find("chunks[1]"), std::string::npos) << twice.status();
  auto empty = (*model)->ForwardChunks({{seq->get(), at::empty({0}, at::kLong)}});
  EXPECT_NE(empty.status().message().find("chunks[0].input_ids"), std::string::npos)
      << empty.status();
  auto too_long = (*model)->ForwardChunks({{seq->get(), Ids(300, 1000, 2)}});
  EXPECT_NE(too_long.status().message().find("context length"), std::string::npos)
      << too_long.status();
  EXPECT_EQ((*seq)->length(), 0);  // rejected chunks leave the sequence untouched
  auto t5 = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/t5-tiny", LoadOptions());
  ASSERT_TRUE(t5.ok());
  auto t5_pool = (*t5)->NewKvPool(8);
  ASSERT_TRUE(t5_pool.ok()) << t5_pool.status();
  EXPECT_EQ((*t5)->NewSequence(**t5_pool, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A pool made for another model is refused, naming it.
  auto foreign = (*t5)->NewSequence(**pool, &ids);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(foreign.status().message().find("pool"), std::string::npos) << foreign.status();
  EXPECT_EQ((*model)->NewKvPool(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*model)->NewKvPool(8, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

// A pool that runs out: ForwardChunks answers RESOURCE_EXHAUSTED naming the pool and leaves
// the sequence's length alone; Reserve says so up front without taking blocks; freeing a
// sequence makes room again. T5: the encoder's keys need blocks at NewSequence.
TEST(RaggedTest, ExhaustedPoolIsAClearError) {
  auto model = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/llama-tiny", LoadOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  auto pool = (*model)->NewKvPool(3, 4);  // 12 positions
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto a = (*model)->NewSequence(**pool, nullptr);
  auto b = (*model)->NewSequence(**pool, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*model)->ForwardChunks({{a->get(), Ids(8, 1000, 1)}}).ok());
  EXPECT_EQ((**pool).free_blocks(), 1);
  EXPECT_FALSE((*b)->Reserve(5));  // needs 2 blocks
  EXPECT_EQ((**pool).free_blocks(), 1);
  EXPECT_TRUE((*b)->Reserve(4));
  auto full = (*model)->ForwardChunks({{b->get(), Ids(6, 1000, 2)}});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("KV cache pool"), std::string::npos) << full.status();
  EXPECT_EQ((*b)->length(), 0);
  a->reset();
  EXPECT_TRUE((*model)->ForwardChunks({{b->get(), Ids(6, 1000, 2)}}).ok());
  EXPECT_EQ((*b)->length(), 6);

  auto t5 = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/t5-tiny", LoadOptions());
  ASSERT_TRUE(t5.ok());
  auto small = (*t5)->NewKvPool(2, 4);
  ASSERT_TRUE(small.ok()) << small.status();
  const at::Tensor encoder = Ids(9, 100, 3);  // 3 blocks of encoder keys
  auto seq = (*t5)->NewSequence(**small, &encoder);
  EXPECT_EQ(seq.status().code(), absl::StatusCode::kResourceExhausted) << seq.status();
  EXPECT_EQ((**small).free_blocks(), 2);  // nothing leaked
}

}  // namespace
}  // namespace triad
