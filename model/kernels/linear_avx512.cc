// LinearRange kernels for AVX-512F (16 fp32 lanes, 32 zmm registers).
//
// Why not AVX512_BF16's _mm512_dpbf16_ps: it multiplies bf16 by bf16, so x would be rounded
// to bf16 first (2^-9 relative error per product, ~100x the fp32 error these kernels
// promise). Splitting x into two or three bf16 parts restores the accuracy but costs two or
// three dot-product instructions per weight vector, no faster than widening the weights and
// using fp32 FMA, and batch-1 decode is bound by memory either way. So bf16 weights widen
// exactly as on AVX2 (zero-extend, shift left 16) and only AVX-512F is required: this path
// also runs on Skylake-X / Ice Lake / Zen 4, not just on CPUs with AVX512_BF16.
//
// Run and tested on Zen 5 (AVX-512F, AVX512_BF16); the tests run this path only where the CPU
// has it (Zen 3 does not).
#include <cstdint>
#include <utility>
#include <vector>

#include "model/kernels/kernels_internal.h"

// Only x86 has these kernels; linear.cc never dispatches to them elsewhere.
#if defined(__x86_64__) || defined(__i386__)
// GCC 12.1/12.2 warn that the _mm512_undefined_* placeholders inside AVX-512F intrinsics
// are uninitialised once inlined (GCC PR 105593, fixed in 12.3); the warning is spurious.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#define TRIAD_KERNEL_TARGET __attribute__((target("avx512f,avx2,fma")))
#include "model/kernels/linear_tile_inl.h"
#include "model/kernels/rows_inl.h"

namespace triad::kernels::internal {
namespace {

struct Avx512Ops {
  using Vec = __m512;
  static constexpr int kLanes = 16;
  // Whether tiles of more than 4 rows prefetch the next panel (see LinearRange). On Zen 5 they
  // ran ~6% faster at 16 rows without it (165 against 156 GFLOP/s over the Llama-110m layers,
  // three alternating runs), while one row tile still gains ~15% from it.
  static constexpr bool kPrefetchPastOneRowTile = false;
  // 32 zmm registers hold a 4x4 tile (16 accumulators + 4 activation vectors + a weight).
  static constexpr int OutTile(int rows) { return 4; }

  TRIAD_KERNEL_TARGET static Vec Zero() { return _mm512_setzero_ps(); }
  TRIAD_KERNEL_TARGET static Vec LoadX(const float* p) { return _mm512_loadu_ps(p); }
  TRIAD_KERNEL_TARGET static Vec LoadW(const float* p) { return _mm512_loadu_ps(p); }
  TRIAD_KERNEL_TARGET static Vec LoadW(const uint16_t* p) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }
  TRIAD_KERNEL_TARGET static Vec MulAdd(Vec a, Vec b, Vec acc) {
    return _mm512_fmadd_ps(a, b, acc);
  }
  TRIAD_KERNEL_TARGET static Vec Add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  TRIAD_KERNEL_TARGET static Vec Broadcast(float x) { return _mm512_set1_ps(x); }
  TRIAD_KERNEL_TARGET static void Store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  TRIAD_KERNEL_TARGET static float ReduceAdd(Vec v) { return _mm512_reduce_add_ps(v); }
};

// Rows-in-lanes tiles, for fp32 weights at kXtMinRows to 16 rows (a decode step of a busy
// batch). The 4x4 tiles above keep the in-features in the lanes: a weight vector read once
// feeds 4 rows, so past 4 rows every weight comes from memory for the first row tile and again
// from L2 for each later one, and every (row, output) pair ends in a horizontal sum. Here the
// activations are first transposed into xt[in][16] (rows in the lanes, zero-padded), and one
// accumulator holds one output for all 16 rows: each weight is the broadcast memory operand of
// a single multiply-add that serves every row at once. The weights stream from memory exactly
// once, with no pass from L2 and no horizontal sums.
//
// Measured on Zen 5 (two cores, the 48 Llama-110m layer matrices streamed from memory, best of
// alternating runs, two series): 16 rows in 12.7 / 10.7 against 15.6 / 13.8 ms for the 4x4
// tiles. With the weights in L2 a tile runs at ~90% of the multiply-add peak (~200 GFLOP/s per
// core). At 8 rows the 4x4 tiles are faster (half the lanes here are padding); at 12 even.
constexpr int kXtRows = 16;
constexpr int kXtMinRows = 12;
// When a weight row is a multiple of 2 KiB long, the 16 rows of a tile fall into one or two
// L1 sets (64 sets of 64 bytes), more than its 12 ways hold, and the broadcasts keep missing
// L1: in=2048 ran at ~100 against ~190 GFLOP/s for in=768 from L2. Such tiles first copy this
// many in-features of their 16 rows into a padded buffer (~150 GFLOP/s).
constexpr int64_t kXtCopyBlock = 256;

// In-feature J of the current 16, for the 4 weight rows b, b + s, b + 2s, b + s3 (s3 = 3s):
// four base pointers and two strides reach a tile's 16 rows, where 16 row pointers would not
// fit the general registers and GCC would spill and reload them.
template <int J>
TRIAD_KERNEL_TARGET __attribute__((always_inline)) inline void XtStep4(
    const char* b, int64_t s, int64_t s3, __m512 x, __m512& a0, __m512& a1, __m512& a2,
    __m512& a3) {
  const float* w0 = reinterpret_cast<const float*>(b) + J;
  const float* w1 = reinterpret_cast<const float*>(b + s) + J;
  const float* w2 = reinterpret_cast<const float*>(b + 2 * s) + J;
  const float* w3 = reinterpret_cast<const float*>(b + s3) + J;
  a0 = _mm512_fmadd_ps(x, _mm512_set1_ps(*w0), a0);
  a1 = _mm512_fmadd_ps(x, _mm512_set1_ps(*w1), a1);
  a2 = _mm512_fmadd_ps(x, _mm512_set1_ps(*w2), a2);
  a3 = _mm512_fmadd_ps(x, _mm512_set1_ps(*w3), a3);
}

// In-feature J of the current 16 for all 16 weight rows (groups of 4 at b[0..3]).
template <int J>
TRIAD_KERNEL_TARGET __attribute__((always_inline)) inline void XtStep16(
    const char* const (&b)[4], int64_t s, int64_t s3, const float* xt, __m512 (&acc)[16]) {
  const __m512 x = _mm512_loadu_ps(xt + J * kXtRows);
  for (int g = 0; g < 4; ++g) {
    XtStep4<J>(b[g], s, s3, x, acc[4 * g], acc[4 * g + 1], acc[4 * g + 2], acc[4 * g + 3]);
  }
}

// 16 in-features of 16 weight rows. Always inlined: as a call, the accumulators would go
// through memory on every in-feature.
template <int... J>
TRIAD_KERNEL_TARGET __attribute__((always_inline)) inline void XtBlock16(
    const char* const (&b)[4], int64_t s, int64_t s3, const float* xt, __m512 (&acc)[16],
    std::integer_sequence<int, J...>) {
  (XtStep16<J>(b, s, s3, xt, acc), ...);
}

// in-features [i, i + 16 * n) of the 16 weight rows from `rows` on (row stride s bytes).
TRIAD_KERNEL_TARGET __attribute__((always_inline)) inline void XtRun16(
    const char* rows, int64_t s, const float* xt, int64_t n, __m512 (&acc)[16]) {
  const int64_t s3 = 3 * s;
  const char* b[4] = {rows, rows + 4 * s, rows + 8 * s, rows + 12 * s};
  for (int64_t block = 0; block < n; ++block) {
    XtBlock16(b, s, s3, xt + block * 16 * kXtRows, acc, std::make_integer_sequence<int, 16>());
    for (const char*& p : b) p += 16 * sizeof(float);
  }
}

// y[:, out + o] for o < O over all in-features.
template <int O>
TRIAD_KERNEL_TARGET void XtTile(const LinearArgs<float>& a, const float* xt, int64_t out) {
  const int64_t in = a.in_features;
  const float* w = a.w + out * in;
  __m512 acc[O];
  for (__m512& v : acc) v = _mm512_setzero_ps();
  int64_t i = 0;
  if constexpr (O == 16) {
    const int64_t row_bytes = in * int64_t{sizeof(float)};
    if (row_bytes % 2048 == 0) {
      constexpr int64_t kStride = kXtCopyBlock + 16;  // padded: rows in different L1 sets
      alignas(64) float copy[16 * kStride];
      for (; i + kXtCopyBlock <= in; i += kXtCopyBlock) {
        for (int o = 0; o < 16; ++o) {
          for (int64_t v = 0; v < kXtCopyBlock; v += 16) {
            _mm512_store_ps(copy + o * kStride + v, _mm512_loadu_ps(w + o * in + i + v));
          }
        }
        XtRun16(reinterpret_cast<const char*>(copy), kStride * sizeof(float), xt + i * kXtRows,
                kXtCopyBlock / 16, acc);
      }
    }
    const int64_t n = (in - i) / 16;
    XtRun16(reinterpret_cast<const char*>(w + i), row_bytes, xt + i * kXtRows, n, acc);
    i += 16 * n;
  }
  for (; i < in; ++i) {
    const __m512 x = _mm512_loadu_ps(xt + i * kXtRows);
    for (int o = 0; o < O; ++o) acc[o] = _mm512_fmadd_ps(x, _mm512_set1_ps(w[o * in + i]), acc[o]);
  }
  alignas(64) float lanes[O][kXtRows];
  for (int o = 0; o < O; ++o) _mm512_store_ps(lanes[o], acc[o]);
  for (int64_t r = 0; r < a.num_rows; ++r) {
    float* y = a.y + r * a.out_features + out;
    for (int o = 0; o < O; ++o) y[o] = lanes[o][r] + (a.bias != nullptr ? a.bias[out + o] : 0.0f);
  }
}

// Outputs [out_begin, out_end) of every row (kXtMinRows <= num_rows <= kXtRows). Each thread
// transposes its own copy of x (num_rows * in floats, small beside the weights).
TRIAD_KERNEL_TARGET void XtRange(const LinearArgs<float>& a, int64_t out_begin, int64_t out_end) {
  thread_local std::vector<float> xt_buffer;
  const int64_t in = a.in_features;
  if (static_cast<int64_t>(xt_buffer.size()) < in * kXtRows) xt_buffer.resize(in * kXtRows);
  float* xt = xt_buffer.data();
  for (int64_t i = 0; i < in; ++i) {
    for (int64_t r = 0; r < kXtRows; ++r) {
      xt[i * kXtRows + r] = r < a.num_rows ? a.x[r * in + i] : 0.0f;
    }
  }
  int64_t out = out_begin;
  for (; out + 16 <= out_end; out += 16) XtTile<16>(a, xt, out);
  for (; out + 4 <= out_end; out += 4) XtTile<4>(a, xt, out);
  for (; out < out_end; ++out) XtTile<1>(a, xt, out);
}

}  // namespace

void LinearRangeAvx512(const LinearArgs<float>& args, int64_t out_begin, int64_t out_end) {
  if (args.num_rows >= kXtMinRows && args.num_rows <= kXtRows) {
    XtRange(args, out_begin, out_end);
  } else {
    LinearRange<Avx512Ops>(args, out_begin, out_end);
  }
}
void LinearRangeAvx512(const LinearArgs<uint16_t>& args, int64_t out_begin, int64_t out_end) {
  LinearRange<Avx512Ops>(args, out_begin, out_end);
}
TRIAD_DEFINE_ROWS(Avx512, Avx512Ops)

}  // namespace triad::kernels::internal

#endif  // x86
