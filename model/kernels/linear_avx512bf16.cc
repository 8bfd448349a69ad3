// LinearBf16Bf16's kernel for CPUs with AVX512_BF16: bf16 activations and bf16 weights at 12
// to 16 rows (a busy decode step of a bfloat16 model).
//
// The layout is linear_avx512.cc's rows-in-lanes one, over pairs of in-features: each 32-bit
// lane r of a vector of xt holds row r's two bf16 activations 2p and 2p + 1 (which is how they
// lie in memory), and the weight row's two bf16 values 2p and 2p + 1 are one 32-bit broadcast.
// _mm512_dpbf16_ps then adds both products to every row's accumulator: 32 multiply-adds per
// instruction where widening the weights to fp32 gives 16, and half the activation bytes.
// Products of two bf16 values are exact in fp32, so only the order of the fp32 sums (and the
// instruction's flushing of denormal inputs) differs from the widening path.
#if defined(__x86_64__) || defined(__i386__)

// GCC 12 warns on the _mm512_undefined_* placeholders inside AVX-512 intrinsics (see
// linear_avx512.cc).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "model/kernels/kernels_internal.h"

#define TRIAD_BF16_TARGET __attribute__((target("avx512f,avx512bf16,avx2,fma")))

namespace triad::kernels::internal {
namespace {

constexpr int kRows = 16;  // rows in the lanes (fewer are zero-padded)

using Args = LinearArgs<uint16_t, uint16_t>;

// The 32 bits at p (two bf16 values), whatever p's alignment.
inline uint32_t Pair(const uint16_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// y[:, out + o] for o < O over all in-features: `xt` holds `pairs` vectors of 16 lanes (the
// full pairs, then the odd last in-feature paired with zero when in_features is odd). Each
// weight row's line 256 bytes ahead is prefetched once per 16 pairs (a line), as the fp32
// tiles do while the weights stream from memory.
// acc[o] += both products of pair p for every row: xt's vector p against weight pair[o].
template <int O>
TRIAD_BF16_TARGET __attribute__((always_inline)) inline void PairStep(const uint32_t* xt,
                                                                       int64_t p,
                                                                       const uint32_t (&pair)[O],
                                                                       __m512 (&acc)[O]) {
  const __m512bh x = (__m512bh)_mm512_loadu_si512(xt + p * kRows);
  for (int o = 0; o < O; ++o) {
    acc[o] = _mm512_dpbf16_ps(acc[o], x, (__m512bh)_mm512_set1_epi32(static_cast<int>(pair[o])));
  }
}

// y[:, out + o] for o < O over all in-features: `xt` holds one vector of 16 lanes per pair
// (the full pairs, then the odd last in-feature paired with zero when in_features is odd).
// Each weight row's line 256 bytes ahead is prefetched once per 16 pairs (a line), as the
// fp32 tiles do while the weights stream from memory.
template <int O>
TRIAD_BF16_TARGET void PairTile(const Args& a, const uint32_t* xt, int64_t out) {
  const int64_t in = a.in_features, full = in / 2;
  const uint16_t* w[O];
  for (int o = 0; o < O; ++o) w[o] = a.w + (out + o) * in;
  __m512 acc[O];
  for (__m512& v : acc) v = _mm512_setzero_ps();
  uint32_t pair[O];
  int64_t p = 0;
  for (; p + 16 <= full; p += 16) {
    for (int o = 0; o < O; ++o) __builtin_prefetch(w[o] + 2 * p + 128, 0, 3);
#pragma GCC unroll 16
    for (int64_t j = 0; j < 16; ++j) {
      for (int o = 0; o < O; ++o) pair[o] = Pair(w[o] + 2 * (p + j));
      PairStep<O>(xt, p + j, pair, acc);
    }
  }
  for (; p < full; ++p) {
    for (int o = 0; o < O; ++o) pair[o] = Pair(w[o] + 2 * p);
    PairStep<O>(xt, p, pair, acc);
  }
  if (in % 2 != 0) {  // the last in-feature, its pair's other half zero
    for (int o = 0; o < O; ++o) pair[o] = w[o][in - 1];
    PairStep<O>(xt, full, pair, acc);
  }
  alignas(64) float sums[O * kRows];
  for (int o = 0; o < O; ++o) _mm512_store_ps(sums + o * kRows, acc[o]);
  StoreLaneSums<O>(a, sums, 0, a.num_rows, out);
}

}  // namespace

TRIAD_BF16_TARGET void LinearRangeAvx512Bf16Pairs(const Args& a, int64_t out_begin,
                                                  int64_t out_end) {
  // xt[p][r]: row r's in-features 2p and 2p + 1; rows past num_rows and the half past an odd
  // in_features are zero. Each thread transposes its own copy (small beside the weights).
  thread_local std::vector<uint32_t> xt_buffer;
  const int64_t in = a.in_features, pairs = (in + 1) / 2;
  xt_buffer.assign(static_cast<size_t>(pairs * kRows), 0u);
  uint32_t* xt = xt_buffer.data();
  for (int64_t r = 0; r < a.num_rows; ++r) {
    const uint16_t* x = a.x + r * in;
    for (int64_t p = 0; p < in / 2; ++p) xt[p * kRows + r] = Pair(x + 2 * p);
    if (in % 2 != 0) xt[(pairs - 1) * kRows + r] = x[in - 1];
  }
  int64_t out = out_begin;
  for (; out + 8 <= out_end; out += 8) PairTile<8>(a, xt, out);
  for (; out + 4 <= out_end; out += 4) PairTile<4>(a, xt, out);
  for (; out < out_end; ++out) PairTile<1>(a, xt, out);
}

}  // namespace triad::kernels::internal

#endif  // x86
