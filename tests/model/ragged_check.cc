#include "tests/model/ragged_check.h"

#include <gtest/gtest.h>

#include <limits>

#include "tests/model/fixture_util.h"

namespace triad::testing {
namespace {

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

}  // namespace

void ExpectRaggedEqualsAlone(const LoadOptions& load) {
  ForEachFixtureModel(load, [&](const Model& m) {
    const int64_t vocab = m.config().vocab_size;
    const std::vector<int64_t> lengths = {9, 4, 28};
    // Steps as (sequence, number of new tokens): prefill chunks and decode tokens mixed. On
    // CPU a T5 chunk longer than RaggedAttention::kMaxKernelChunk gathers its blocks; every
    // other chunk and decode token is a query of the paged kernel (with kernels off, every
    // chunk gathers). Sequence 2's 6-token chunk asks for every position's logits.
    const std::vector<std::vector<std::pair<int, int64_t>>> schedule = {
        {{0, 4}, {1, 3}, {2, 20}}, {{2, 6}, {0, 3}, {1, 1}}, {{0, 1}, {2, 1}}, {{2, 1}, {0, 1}}};
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
      tokens.push_back(RandomTokenIds({lengths[s]}, vocab, 10 + s));
      encoders.push_back(RandomTokenIds({5 + 3 * static_cast<int64_t>(s)}, vocab, 20 + s));
      reference.push_back(Alone(m, tokens[s], encoders[s]).to(at::kCPU));
      auto seq = m.NewSequence(**pool, m.config().is_encoder_decoder() ? &encoders[s] : nullptr);
      ASSERT_TRUE(seq.ok()) << seq.status();
      states.push_back(*std::move(seq));
    }
    std::vector<int64_t> done(lengths.size(), 0);
    for (const auto& step : schedule) {
      std::vector<SequenceChunk> chunks;
      int64_t rows = 0;
      for (const auto& [s, n] : step) {
        const bool all = s == 2 && n == 6;
        chunks.push_back({states[s].get(), tokens[s].narrow(0, done[s], n), all});
        rows += all ? n : 1;
      }
      auto logits = m.ForwardChunks(chunks);
      ASSERT_TRUE(logits.ok()) << logits.status();
      ASSERT_EQ(logits->size(0), rows);
      int64_t row = 0;
      for (size_t c = 0; c < step.size(); ++c) {
        const auto [s, n] = step[c];
        for (int64_t t = chunks[c].all_logits ? 0 : n - 1; t < n; ++t, ++row) {
          const at::Tensor expected = reference[s][done[s] + t];
          EXPECT_LE(MaxAbsDiff((*logits)[row], expected), FixtureTolerance(expected))
              << "sequence " << s << " at position " << done[s] + t;
        }
        done[s] += n;
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
  });
}

void ExpectForksEqualFresh(const LoadOptions& load) {
  ForEachFixtureModel(load, [&](const Model& m) {
    const int64_t vocab = m.config().vocab_size;
    auto ids = [vocab](int64_t len, uint64_t seed) { return RandomTokenIds({len}, vocab, seed); };
    const at::Tensor encoder = ids(7, 50);
    const at::Tensor* enc = m.config().is_encoder_decoder() ? &encoder : nullptr;
    for (const int64_t prefix_len : {6, 8}) {
      SCOPED_TRACE(prefix_len);
      auto pool = m.NewKvPool(64, 4);
      ASSERT_TRUE(pool.ok()) << pool.status();
      const at::Tensor prefix = ids(prefix_len, 51), a = ids(3, 52), b = ids(5, 53);
      auto parent = m.NewSequence(**pool, enc);
      ASSERT_TRUE(parent.ok()) << parent.status();
      ASSERT_TRUE(m.ForwardChunks({{parent->get(), prefix}}).ok());
      const int64_t free_before = (**pool).free_blocks();
      auto child = m.ForkSequence(**parent);
      ASSERT_TRUE(child.ok()) << child.status();
      EXPECT_EQ((*child)->length(), prefix_len);
      EXPECT_EQ((**pool).free_blocks(), free_before - (prefix_len % 4 != 0 ? 1 : 0));
      auto forked = m.ForwardChunks({{parent->get(), a}, {child->get(), b}});
      ASSERT_TRUE(forked.ok()) << forked.status();
      for (int64_t row = 0; row < 2; ++row) {
        auto fresh = m.NewSequence(**pool, enc);
        ASSERT_TRUE(fresh.ok());
        auto alone = m.ForwardChunks({{fresh->get(), at::cat({prefix, row == 0 ? a : b})}});
        ASSERT_TRUE(alone.ok()) << alone.status();
        EXPECT_LE(MaxAbsDiff((*forked)[row], (*alone)[0]), FixtureTolerance((*alone)[0]))
            << "row " << row;
      }
      parent->reset();
      child->reset();
      EXPECT_EQ((**pool).free_blocks(), (**pool).num_blocks());  // every shared block returned
    }
    auto tight = m.NewKvPool(m.config().is_encoder_decoder() ? 4 : 2, 4);
    ASSERT_TRUE(tight.ok()) << tight.status();
    auto parent = m.NewSequence(**tight, enc);
    ASSERT_TRUE(parent.ok()) << parent.status();
    ASSERT_TRUE(m.ForwardChunks({{parent->get(), ids(6, 54)}}).ok());
    ASSERT_EQ((**tight).free_blocks(), 0);
    auto refused = m.ForkSequence(**parent);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
    parent->reset();
    EXPECT_EQ((**tight).free_blocks(), (**tight).num_blocks());
  });
}

}  // namespace triad::testing
