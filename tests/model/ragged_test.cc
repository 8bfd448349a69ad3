// Continuous batching over the paged KV pool (see ragged_check.h for the main check), pool
// errors, NewSequences.
#include <gtest/gtest.h>

#include "model/architectures.h"
#include "model/layers.h"
#include "model/model.h"
#include "model/scoring.h"
#include "tests/model/fixture_util.h"
#include "tests/model/ragged_check.h"

namespace triad {
namespace {

at::Tensor Ids(int64_t len, int64_t vocab, uint64_t seed) {
  return testing::RandomTokenIds({len}, vocab, seed);
}

// Decode queries through the CPU paged kernel.
TEST(RaggedTest, ChunkedMixedBatchEqualsEachSequenceAlone) {
  testing::ExpectRaggedEqualsAlone(LoadOptions());
}

// Decode queries as one padded batch gathered from the blocks (the path CUDA takes); the
// padding's keys are masked and zeroed, so stale pool contents cannot leak in.
TEST(RaggedTest, PaddedDecodePathEqualsEachSequenceAlone) {
  SetUseCpuKernels(false);
  testing::ExpectRaggedEqualsAlone(LoadOptions());
  SetUseCpuKernels(true);
}

// NewSequences (T5: one padded encoder batch) gives each sequence what NewSequence gives it.
TEST(RaggedTest, NewSequencesEqualsEachNewSequence) {
  testing::ForEachFixtureModel(LoadOptions(), [&](const Model& m) {
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
  });
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

// T5 decode queries below kT5DecodeBiasSpan read their relative-position bias from one
// precomputed row; from there on it is computed per query. Decoding across that boundary, one
// token a step, gives the logits of the same positions read from one chunk, whose bias is
// computed for the chunk (both forked from one sequence holding the positions before). Both kernels: the CPU paged one and the padded batch CUDA takes.
TEST(RaggedTest, T5DecodeBiasRowEqualsPerQueryBias) {
  auto t5 = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/t5-tiny", LoadOptions());
  ASSERT_TRUE(t5.ok()) << t5.status();
  const Model& m = **t5;
  const int64_t first = kT5DecodeBiasSpan - 2, total = kT5DecodeBiasSpan + 2;
  const at::Tensor ids = Ids(total, m.config().vocab_size, 70);
  const at::Tensor encoder = Ids(7, m.config().vocab_size, 71);
  const int64_t kChunk = 64;
  auto pool = m.NewKvPool(3 * (total / 16 + 2) + 8);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto base = m.NewSequence(**pool, &encoder);  // positions 0..first-1, forked for each check
  ASSERT_TRUE(base.ok()) << base.status();
  for (int64_t at = 0; at < first; at += kChunk) {
    const int64_t n = std::min<int64_t>(kChunk, first - at);
    ASSERT_TRUE(m.ForwardChunks({{base->get(), ids.narrow(0, at, n)}}).ok());
  }
  for (const bool kernels : {true, false}) {
    SetUseCpuKernels(kernels);
    auto chunked = m.ForkSequence(**base);
    ASSERT_TRUE(chunked.ok()) << chunked.status();
    auto decoded = m.ForkSequence(**base);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    auto expected =
        m.ForwardChunks({{chunked->get(), ids.narrow(0, first, total - first), /*all_logits=*/true}});
    ASSERT_TRUE(expected.ok()) << expected.status();
    std::vector<at::Tensor> actual;
    for (int64_t t = first; t < total; ++t) {
      auto out = m.ForwardChunks({{decoded->get(), ids.narrow(0, t, 1)}});
      ASSERT_TRUE(out.ok()) << out.status();
      actual.push_back((*out)[0]);
    }
    ASSERT_EQ(actual.size(), 4u);
    for (size_t k = 0; k < actual.size(); ++k) {
      const at::Tensor row = (*expected)[static_cast<int64_t>(k)];
      EXPECT_LE(testing::MaxAbsDiff(actual[k], row), testing::FixtureTolerance(row))
          << "position " << first + static_cast<int64_t>(k) << (kernels ? " kernel" : " padded");
    }
  }
  SetUseCpuKernels(true);
}

// ForkSequence (beam search); see ragged_check.h.
TEST(RaggedTest, ForkedSequencesEqualFreshOnes) { testing::ExpectForksEqualFresh(LoadOptions()); }

// HeadChunks: a context run once and forked per continuation gives each continuation the head
// output HeadLogits gives the whole sequence (GPT-1 sequence-classification and double-heads
// folders); models without a head answer UNIMPLEMENTED.
TEST(RaggedTest, HeadChunksOnForksEqualHeadLogits) {
  int checked = 0;
  testing::ForEachFixtureModel(LoadOptions(), [&](const Model& m) {
    auto pool = m.NewKvPool(64, 4);
    ASSERT_TRUE(pool.ok()) << pool.status();
    const int64_t vocab = m.config().vocab_size;
    auto context = m.NewSequence(**pool, nullptr);
    if (m.head_outputs() == 0) {
      if (m.config().is_encoder_decoder()) return;
      ASSERT_TRUE(context.ok());
      const absl::Status none =
          m.HeadChunks({{context->get(), Ids(3, vocab, 60)}}).status();
      EXPECT_EQ(none.code(), absl::StatusCode::kUnimplemented) << none;
      return;
    }
    ASSERT_TRUE(context.ok()) << context.status();
    const at::Tensor shared = Ids(9, vocab, 61);
    const std::vector<at::Tensor> rests = {Ids(3, vocab, 62), Ids(5, vocab, 63), Ids(1, vocab, 64)};
    ASSERT_TRUE(m.ForwardChunks({{context->get(), shared}}).ok());
    std::vector<std::unique_ptr<SequenceState>> forks;
    std::vector<SequenceChunk> chunks;
    at::Tensor whole = at::zeros({3, 14}, at::kLong), read = at::zeros({3}, at::kLong);
    for (size_t k = 0; k < rests.size(); ++k) {
      auto fork = m.ForkSequence(**context);
      ASSERT_TRUE(fork.ok()) << fork.status();
      forks.push_back(*std::move(fork));
      chunks.push_back({forks.back().get(), rests[k]});
      const at::Tensor row = at::cat({shared, rests[k]});
      whole[static_cast<int64_t>(k)].narrow(0, 0, row.size(0)).copy_(row);
      read[static_cast<int64_t>(k)] = row.size(0) - 1;
    }
    auto forked = m.HeadChunks(chunks);
    auto expected = m.HeadLogits(whole, read);
    ASSERT_TRUE(forked.ok() && expected.ok()) << forked.status() << expected.status();
    EXPECT_EQ(forked->sizes(), expected->sizes());
    EXPECT_LE(testing::MaxAbsDiff(*forked, *expected), testing::FixtureTolerance(*expected));
    // HeadLogitsInPool finds the shared context itself: rows 0-2 one group, a lone fourth row.
    forks.clear();
    context->reset();
    std::vector<std::vector<int64_t>> rows;
    for (int64_t k = 0; k < 3; ++k) {
      const at::Tensor row = whole[k].narrow(0, 0, read[k].item<int64_t>() + 1);
      rows.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.size(0));
    }
    rows.push_back(rows[1]);
    auto fresh_pool = m.NewKvPool(64, 4);
    ASSERT_TRUE(fresh_pool.ok()) << fresh_pool.status();
    auto grouped = HeadLogitsInPool(m, **fresh_pool, rows, {0, 0, 0, 1});
    ASSERT_TRUE(grouped.ok()) << grouped.status();
    // Shared: the 9-token context's 3 blocks + the forks' own 1 + 2 + 1 + the lone row's 4.
    // Each row alone would take 3 + 4 + 3 + 4.
    EXPECT_EQ((**fresh_pool).peak_used_blocks(), 11);
    EXPECT_LE(testing::MaxAbsDiff(grouped->narrow(0, 0, 3), *expected),
              testing::FixtureTolerance(*expected));
    EXPECT_LE(testing::MaxAbsDiff((*grouped)[3], (*expected)[1]),
              testing::FixtureTolerance(*expected));
    EXPECT_EQ((**fresh_pool).free_blocks(), (**fresh_pool).num_blocks());
    ++checked;
  });
  EXPECT_GE(checked, 2);  // gpt1-tiny-cls and gpt1-tiny-mc
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

// The static decode step CUDA graphs capture, run eagerly on the CPU, against ForwardChunks on
// both CPU paths (the paged kernel and the padded batch). Capturing needs CUDA: Create says so.
TEST(DecodeGraphTest, EagerStaticDecodeEqualsForwardChunks) {
  testing::ExpectDecodeGraphsEqualChunks(LoadOptions(), DecodeGraphRunner::Mode::kEager);
  SetUseCpuKernels(false);
  testing::ExpectDecodeGraphsEqualChunks(LoadOptions(), DecodeGraphRunner::Mode::kEager);
  SetUseCpuKernels(true);
  auto llama = LoadModel(std::string(TRIAD_TEST_DATA_DIR) + "/models/llama-tiny", LoadOptions());
  ASSERT_TRUE(llama.ok()) << llama.status();
  auto pool = (*llama)->NewKvPool(4);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto capture = DecodeGraphRunner::Create(**llama, **pool, 4, DecodeGraphRunner::Mode::kCapture);
  EXPECT_EQ(capture.status().code(), absl::StatusCode::kFailedPrecondition) << capture.status();
  EXPECT_NE(capture.status().message().find("CUDA"), std::string::npos) << capture.status();
  auto full = (*llama)->NewKvPool(1);
  ASSERT_TRUE(full.ok()) << full.status();
  auto seq = (*llama)->NewSequence(**full, nullptr);
  ASSERT_TRUE(seq.ok() && (*seq)->Reserve(1));
  auto no_block = DecodeGraphRunner::Create(**llama, **full, 4, DecodeGraphRunner::Mode::kEager);
  EXPECT_EQ(no_block.status().code(), absl::StatusCode::kResourceExhausted) << no_block.status();
}

}  // namespace
}  // namespace triad
