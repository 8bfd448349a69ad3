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

// Stale contents: nothing outside a sequence's own positions may reach its attention.
void FillWithNan(KvPool& pool) {
  for (int64_t l = 0; l < pool.shape().num_layers; ++l) {
    pool.keys(l).fill_(std::numeric_limits<float>::quiet_NaN());
    pool.values(l).fill_(std::numeric_limits<float>::quiet_NaN());
  }
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
    FillWithNan(**pool);
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

void ExpectDecodeGraphsEqualChunks(const LoadOptions& load, DecodeGraphRunner::Mode mode) {
  ForEachFixtureModel(load, [&](const Model& m) {
    auto pool_a = m.NewKvPool(160, 4), pool_b = m.NewKvPool(160, 4);
    ASSERT_TRUE(pool_a.ok() && pool_b.ok());
    const bool t5 = m.config().is_encoder_decoder();
    FillWithNan(**pool_a);
    FillWithNan(**pool_b);
    const int64_t vocab = m.config().vocab_size;
    const std::vector<int64_t> prompts = {1, 3, 4, 9, 13};
    // T5: encoder inputs of 1 to 30 positions, so the cross blocks' bucket differs by step.
    const std::vector<int64_t> encoders = {5, 30, 1, 9, 17};
    std::vector<std::unique_ptr<SequenceState>> a, b;
    for (size_t s = 0; s < prompts.size(); ++s) {
      const at::Tensor ids = RandomTokenIds({prompts[s]}, vocab, 60 + s);
      const at::Tensor encoder = RandomTokenIds({encoders[s]}, vocab, 50 + s);
      auto sa = m.NewSequence(**pool_a, t5 ? &encoder : nullptr);
      auto sb = m.NewSequence(**pool_b, t5 ? &encoder : nullptr);
      ASSERT_TRUE(sa.ok() && sb.ok());
      a.push_back(*std::move(sa));
      b.push_back(*std::move(sb));
      ASSERT_TRUE(m.ForwardChunks({{a.back().get(), ids}}).ok());
      ASSERT_TRUE(m.ForwardChunks({{b.back().get(), ids}}).ok());
    }
    // Made after the prompts, so that its padding block is not the pool's first.
    auto runner = DecodeGraphRunner::Create(m, **pool_b, 7, mode);
    ASSERT_TRUE(runner.ok()) << runner.status();
    DecodeGraphRunner& graphs = **runner;
    std::vector<at::Tensor> next(prompts.size());
    for (size_t s = 0; s < prompts.size(); ++s) next[s] = RandomTokenIds({1}, vocab, 70 + s);
    // Row buckets 1, 2, 4 and 7 (five rows: the runner's cap of seven, not eight); sequence 4
    // goes from 13 to 29 positions, so the block bucket grows from 4 to 8.
    const std::vector<std::vector<size_t>> steps = {
        {0, 1, 2, 3, 4}, {4, 2, 0}, {3}, {1, 4}, {0, 1, 2, 3, 4}, {4, 3, 2, 1, 0},
        {4}, {4, 3}, {4, 3, 2}, {4, 3, 2, 1}, {0, 1, 2, 3, 4}, {4}, {4}, {4}, {4}, {4}, {4}};
    for (size_t step = 0; step < steps.size(); ++step) {
      SCOPED_TRACE(step);
      std::vector<SequenceChunk> ca, cb;
      for (size_t s : steps[step]) {
        ca.push_back({a[s].get(), next[s]});
        cb.push_back({b[s].get(), next[s]});
      }
      ASSERT_TRUE(graphs.Applies(cb));
      auto expected = m.ForwardChunks(ca);
      auto got = graphs.Forward(cb);
      ASSERT_TRUE(expected.ok()) << expected.status();
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(got->sizes(), expected->sizes());
      for (size_t r = 0; r < steps[step].size(); ++r) {
        const size_t s = steps[step][r];
        const at::Tensor want = (*expected)[static_cast<int64_t>(r)].to(at::kCPU);
        EXPECT_LE(MaxAbsDiff((*got)[static_cast<int64_t>(r)], want), FixtureTolerance(want))
            << "sequence " << s << " at position " << a[s]->length() - 1;
        EXPECT_EQ(b[s]->length(), a[s]->length());
        next[s] = want.argmax().view({1}).to(at::kLong);
      }
    }
    EXPECT_EQ(b[4]->length(), 29);
    // Bad input is refused as ForwardChunks refuses it, before anything runs.
    const at::Tensor outside = at::tensor({vocab}, at::kLong);
    auto refused = graphs.Forward({{b[0].get(), outside}});
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
    EXPECT_EQ(b[0]->length(), a[0]->length());
    // Steps the runner does not take.
    EXPECT_FALSE(graphs.Applies({}));
    EXPECT_FALSE(graphs.Applies({{b[0].get(), RandomTokenIds({2}, vocab, 80)}}));
    EXPECT_FALSE(graphs.Applies({{b[0].get(), next[0], /*all_logits=*/true}}));
    EXPECT_FALSE(graphs.Applies({{a[0].get(), next[0]}}));  // another pool
    std::vector<SequenceChunk> eight;
    std::vector<std::unique_ptr<SequenceState>> extra;
    const at::Tensor encoder = RandomTokenIds({3}, vocab, 81);
    for (int i = 0; i < 8; ++i) {
      auto seq = m.NewSequence(**pool_b, t5 ? &encoder : nullptr);
      ASSERT_TRUE(seq.ok());
      extra.push_back(*std::move(seq));
      eight.push_back({extra.back().get(), next[0]});
    }
    EXPECT_FALSE(graphs.Applies(eight));
    eight.pop_back();
    EXPECT_TRUE(graphs.Applies(eight));
    if (mode == DecodeGraphRunner::Mode::kCapture) {
      EXPECT_EQ(graphs.failed_captures(), 0) << graphs.first_failure();
      // Rows 7, 4, 2, 1, each with 4 and with 8 blocks (T5: one encoder bucket each, 8 blocks
      // but for the one-row step of sequence 3, whose 9 encoder positions take 4).
      EXPECT_EQ(graphs.graphs(), 8);
    } else {
      EXPECT_EQ(graphs.graphs(), 0);
    }
    // Step: a prompt chunk between two decode rows splits (the rows through the runner, the
    // prompt through ForwardChunks), each row in the step's order; a decode-only step takes
    // the runner; a chunk asking for every logit runs as ForwardChunks.
    const at::Tensor encoder_n = RandomTokenIds({6}, vocab, 90);
    auto na = m.NewSequence(**pool_a, t5 ? &encoder_n : nullptr);
    auto nb = m.NewSequence(**pool_b, t5 ? &encoder_n : nullptr);
    ASSERT_TRUE(na.ok() && nb.ok());
    const at::Tensor prompt = RandomTokenIds({5}, vocab, 91);
    using Path = DecodeGraphRunner::StepPath;
    const std::vector<std::pair<std::vector<size_t>, Path>> mixed = {
        {{1, 5, 3}, Path::kSplit}, {{5, 1}, Path::kRunner}, {{2}, Path::kChunks}};
    for (const auto& [order, want_path] : mixed) {
      SCOPED_TRACE(static_cast<int>(want_path));
      std::vector<SequenceChunk> ca, cb;
      for (size_t s : order) {
        const bool all_logits = want_path == Path::kChunks;
        if (s == 5) {  // the newcomer: its prompt, then one token
          const at::Tensor ids = (*na)->length() == 0 ? prompt : next[0];
          ca.push_back({na->get(), ids});
          cb.push_back({nb->get(), ids});
        } else {
          ca.push_back({a[s].get(), next[s], all_logits});
          cb.push_back({b[s].get(), next[s], all_logits});
        }
      }
      auto expected = m.ForwardChunks(ca);
      Path path = Path::kChunks;
      auto got = graphs.Step(cb, &path);
      ASSERT_TRUE(expected.ok()) << expected.status();
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(path, want_path);
      ASSERT_EQ(got->sizes(), expected->sizes());
      for (int64_t r = 0; r < got->size(0); ++r) {
        const at::Tensor want = (*expected)[r].to(at::kCPU);
        EXPECT_LE(MaxAbsDiff((*got)[r], want), FixtureTolerance(want)) << "row " << r;
      }
      EXPECT_EQ((*nb)->length(), (*na)->length());
      for (size_t s : order) {
        if (s == 5) continue;
        EXPECT_EQ(b[s]->length(), a[s]->length());
      }
    }
    na->reset();
    nb->reset();
    a.clear();
    b.clear();
    extra.clear();
    EXPECT_EQ((**pool_b).used_blocks(), 1);  // the padding rows' block
    runner->reset();
    EXPECT_EQ((**pool_b).used_blocks(), 0);
  });
}

}  // namespace triad::testing
