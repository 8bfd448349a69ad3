// The paged KV pool: block accounting, writes that cross block boundaries, gathers, and the
// CPU decode kernel against a reference attention over the same keys and values.
// Tolerances: float32 1e-5 (summation order); bfloat16 2^-7 of max(1, max|expected|) (the
// reference rounds at the kernel's points; see CompareDecodeKernel).
#include <gtest/gtest.h>

#include "model/kv_pool.h"
#include "model/layers.h"

namespace triad {
namespace {

// Writes k, v [num_kv_heads, T, head_dim] of `layer` at kv's positions length()..+T-1 the way
// a step does (its slots, then one indexed copy), taking blocks as needed.
void Write(PagedKv& kv, int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  std::vector<int64_t> slots;
  kv.AppendSlots(k.size(1), slots);
  kv.pool().WriteSlots(layer, at::tensor(slots, at::kLong), k, v);
}

KvPoolShape Shape(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t block) {
  KvPoolShape s;
  s.num_layers = layers;
  s.num_kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.block_size = block;
  return s;
}

TEST(KvPoolTest, BlocksAreCountedTakenAndReturned) {
  KvPool pool(Shape(2, 2, 8, 4), 5, at::kFloat, at::kCPU);
  EXPECT_EQ(pool.block_bytes(), 2 * 2 * 2 * 4 * 8 * 4);
  EXPECT_EQ(pool.BlocksFor(0), 0);
  EXPECT_EQ(pool.BlocksFor(4), 1);
  EXPECT_EQ(pool.BlocksFor(5), 2);
  std::vector<int32_t> a, b;
  EXPECT_TRUE(pool.Allocate(3, a));
  EXPECT_FALSE(pool.Allocate(3, b));  // all or nothing
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(pool.Hold(1));
  EXPECT_FALSE(pool.Hold(2));
  EXPECT_EQ(pool.free_blocks(), 1);
  EXPECT_EQ(pool.used_blocks(), 4);
  pool.Unhold(1);
  pool.Free(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(pool.free_blocks(), 5);
  EXPECT_EQ(pool.peak_used_blocks(), 4);
  EXPECT_THROW(KvPool(Shape(2, 2, 8, 4), 0, at::kFloat, at::kCPU), std::invalid_argument);
}

TEST(KvPoolTest, WritesAcrossBlocksGatherBackInOrder) {
  KvPool pool(Shape(1, 2, 3, 4), 8, at::kFloat, at::kCPU);
  PagedKv kv(pool);
  std::vector<int32_t> other;
  ASSERT_TRUE(pool.Allocate(1, other));  // so the sequence's blocks are not 0, 1, 2
  const at::Tensor k = at::randn({2, 10, 3}), v = at::randn({2, 10, 3});
  Write(kv, 0, k.narrow(1, 0, 3), v.narrow(1, 0, 3));  // positions 0-2
  kv.Advance(3);
  Write(kv, 0, k.narrow(1, 3, 7), v.narrow(1, 3, 7));  // 3-9: crosses two block boundaries
  kv.Advance(7);
  EXPECT_EQ(kv.blocks().size(), 3u);
  const auto [keys, values] = kv.Gather(0, 10, kv.BlockIndex(10, at::kCPU));
  EXPECT_TRUE(at::equal(keys[0], k));
  EXPECT_TRUE(at::equal(values[0], v));
  EXPECT_FALSE(kv.Reserve(100));
  EXPECT_EQ(kv.blocks().size(), 3u);
}

// Full blocks registered by one sequence are adopted by another with the same leading tokens
// (shared, reference-counted), stay cached once nobody holds them, count as free, and are
// evicted least recently released first when fresh blocks run out.
TEST(KvPoolTest, PrefixCacheSharesFullBlocks) {
  KvPool pool(Shape(1, 1, 2, 4), 6, at::kFloat, at::kCPU);
  std::vector<int64_t> tokens(10);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = 100 + static_cast<int64_t>(i);
  auto a = std::make_unique<PagedKv>(pool);
  Write(*a, 0, at::randn({1, 10, 2}), at::randn({1, 10, 2}));
  a->Advance(10);
  a->RegisterFullBlocks(tokens);  // blocks 0 and 1 are full; the third holds 2 positions
  EXPECT_EQ(pool.cached_blocks(), 2);

  std::vector<int64_t> other = tokens;
  other[9] = 7;  // differs only in the third block
  auto b = std::make_unique<PagedKv>(pool);
  EXPECT_EQ(b->AdoptPrefix(other, 5), 8);
  EXPECT_EQ(b->length(), 8);
  EXPECT_EQ(std::vector<int32_t>(a->blocks().begin(), a->blocks().begin() + 2), b->blocks());
  EXPECT_EQ(pool.used_blocks(), 3);  // shared blocks count once
  other[1] = 7;                      // differs in the first block: nothing to adopt
  PagedKv c(pool);
  EXPECT_EQ(c.AdoptPrefix(other, 5), 0);
  auto d = std::make_unique<PagedKv>(pool);
  EXPECT_EQ(d->AdoptPrefix(tokens, 1), 4);  // at most max_blocks

  a.reset();  // its private third block is free again; the shared ones stay with b and d
  EXPECT_EQ(pool.used_blocks(), 2);
  b.reset();
  d.reset();  // nobody holds the cached blocks: free, but still adoptable
  EXPECT_EQ(pool.used_blocks(), 0);
  EXPECT_EQ(pool.cached_blocks(), 2);
  auto e = std::make_unique<PagedKv>(pool);
  EXPECT_EQ(e->AdoptPrefix(tokens, 5), 8);
  Write(*e, 0, at::randn({1, 2, 2}), at::randn({1, 2, 2}));  // positions 8, 9 in a fresh block
  e->Advance(2);
  EXPECT_EQ(pool.used_blocks(), 3);
  // Held cached blocks are not evictable: 3 blocks are left, not 4.
  std::vector<int32_t> taken;
  EXPECT_TRUE(pool.Allocate(3, taken));
  EXPECT_FALSE(pool.Allocate(1, taken));
  pool.Free(taken);
  e.reset();
  // 4 never-used blocks, then one eviction: the prefix's second block goes first (a sequence
  // releases its blocks last to first), so its first block stays adoptable.
  EXPECT_TRUE(pool.Allocate(5, taken));
  EXPECT_EQ(pool.cached_blocks(), 1);
  PagedKv f(pool);
  EXPECT_EQ(f.AdoptPrefix(tokens, 5), 4);
}

// Several single-token queries of different lengths, GQA (4 query heads over 2 KV heads), a
// float32 bias on some, through the kernel and through a float32 reference over the gathered
// keys and values that rounds to `dtype` at the kernel's points (as the eager bf16 path does):
// the scores after the dot product, the scale and the bias, and the probabilities. The two
// differ by the output's rounding and by summation order, which can flip an intermediate
// rounding: `tolerance` is relative to max(1, max|expected|). Seeded: the inputs are the same
// every run.
void CompareDecodeKernel(at::ScalarType dtype, double tolerance) {
  at::manual_seed(20261203);
  const int64_t heads = 4, kv_heads = 2, dim = 16, block = 4;
  KvPool pool(Shape(2, kv_heads, dim, block), 32, dtype, at::kCPU);
  const std::vector<int64_t> lengths = {1, 4, 9, 23};
  std::vector<std::unique_ptr<PagedKv>> seqs;
  std::vector<PagedQuery> queries;
  for (size_t i = 0; i < lengths.size(); ++i) {
    seqs.push_back(std::make_unique<PagedKv>(pool));
    for (int64_t layer = 0; layer < 2; ++layer) {
      Write(*seqs.back(), layer, at::randn({kv_heads, lengths[i], dim}).to(dtype),
            at::randn({kv_heads, lengths[i], dim}).to(dtype));
    }
    seqs.back()->Advance(lengths[i]);
    at::Tensor bias = i % 2 == 1 ? at::randn({heads, lengths[i]}) : at::Tensor();
    queries.push_back({seqs.back().get(), lengths[i], bias});
  }
  const at::Tensor q = at::randn({static_cast<int64_t>(lengths.size()), heads, dim}).to(dtype);
  const at::Tensor out = PagedDecodeAttention(q, queries, /*layer=*/1, 0.25);
  ASSERT_EQ(out.sizes(), q.sizes());
  const auto round = [&](const at::Tensor& t) { return t.to(dtype).to(at::kFloat); };
  for (size_t i = 0; i < lengths.size(); ++i) {
    const auto [k, v] = seqs[i]->Gather(1, lengths[i], seqs[i]->BlockIndex(lengths[i], at::kCPU));
    // [heads, length, dim]: each query head reads its KV head.
    const at::Tensor kf = k.to(at::kFloat)[0].repeat_interleave(heads / kv_heads, 0);
    const at::Tensor vf = v.to(at::kFloat)[0].repeat_interleave(heads / kv_heads, 0);
    const at::Tensor qf = q[static_cast<int64_t>(i)].to(at::kFloat).unsqueeze(1);  // [heads, 1, dim]
    at::Tensor scores = round(round(at::bmm(qf, kf.transpose(1, 2)).squeeze(1)) * 0.25);
    if (queries[i].bias.defined()) scores = round(scores + queries[i].bias);
    const at::Tensor probs = round(at::softmax(scores, -1));
    const at::Tensor expected = at::bmm(probs.unsqueeze(1), vf).squeeze(1);  // [heads, dim]
    const double diff =
        (out[static_cast<int64_t>(i)].to(at::kFloat) - expected).abs().max().item<double>();
    EXPECT_LE(diff, tolerance * std::max(1.0, expected.abs().max().item<double>()))
        << "query " << i << " of length " << lengths[i];
  }
}

TEST(KvPoolTest, DecodeKernelEqualsAttentionFloat32) { CompareDecodeKernel(at::kFloat, 1e-5); }
TEST(KvPoolTest, DecodeKernelEqualsAttentionBfloat16) { CompareDecodeKernel(at::kBFloat16, 1.0 / 128); }

}  // namespace
}  // namespace triad
