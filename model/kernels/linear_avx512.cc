// LinearRange kernels for AVX-512F (16 fp32 lanes, 32 zmm registers).
//
// Why not AVX512_BF16's _mm512_dpbf16_ps: it multiplies bf16 by bf16, so x would be rounded
// to bf16 first (2^-9 relative error per product, ~100x the fp32 error these kernels
// promise). Splitting x into two or three bf16 parts restores the accuracy but costs two or
// three dot-product instructions per weight vector, no faster than widening the weights and
// using fp32 FMA, and batch-1 decode is bound by memory either way. So bf16 weights widen
// exactly as on AVX2 (zero-extend, shift left 16) and only AVX-512F is required: this path
// also runs on Skylake-X / Ice Lake / Zen 4, not just on CPUs with AVX512_BF16. Where x is
// bf16 already (a bfloat16 model's activations: LinearBf16Bf16) nothing is rounded, and
// linear_avx512bf16.cc does use the dot product, at 12 to 16 rows.
//
// Run and tested on Zen 5 (AVX-512F, AVX512_BF16); the tests run this path only where the CPU
// has it (Zen 3 does not).
#include <algorithm>
#include <cstdint>
#include <limits>
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

  // Lane r = the sum of a[r]'s lanes. Pairs of rows are interleaved and added within each
  // 128-bit lane (then pairs of pairs, as 64-bit elements), leaving rows 4k..4k+3 in y[k] as
  // four partial sums, one per 128-bit lane; two rounds of 128-bit lane shuffles add those.
  TRIAD_KERNEL_TARGET static Vec Sum16(const Vec* a) {
    Vec x[8], y[4];
    for (int k = 0; k < 8; ++k) {
      x[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]),
                           _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
    }
    for (int k = 0; k < 4; ++k) {
      const __m512d lo = _mm512_castps_pd(x[2 * k]), hi = _mm512_castps_pd(x[2 * k + 1]);
      y[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi)),
                           _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi)));
    }
    const Vec v01 = _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(y[0], y[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const Vec v23 = _mm512_add_ps(_mm512_shuffle_f32x4(y[2], y[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(y[2], y[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(v01, v23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(v01, v23, _MM_SHUFFLE(3, 1, 3, 1)));
  }

  // exp(x) as Cephes' expf computes it (x = n ln2 + r with |r| <= ln2 / 2, a degree-7
  // polynomial in r, times 2^n), ~1-2 ulp from std::exp: 0 below -103.97 (where float's
  // exp underflows), +inf above 88.72, NaN for NaN.
  TRIAD_KERNEL_TARGET static Vec Exp(Vec x) {
    const Vec lowest = _mm512_set1_ps(-103.97208f);
    const __mmask16 underflow = _mm512_cmp_ps_mask(x, lowest, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_set1_ps(88.72284f), _mm512_max_ps(lowest, x));  // NaN stays NaN
    const Vec n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    Vec r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    Vec p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(static_cast<__mmask16>(~underflow), p, n);
  }

  // rows.h's ScaledSoftmaxF32: three passes over the scores (scale, bias and the maximum; the
  // exponentials and their sum; the division), 16 at a time, the last vector masked.
  TRIAD_KERNEL_TARGET static void ScaledSoftmax(float* s, int64_t n, float scale,
                                                const float* bias) {
    auto mask = [n](int64_t i) {
      return n - i >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1);
    };
    const Vec vscale = _mm512_set1_ps(scale);
    Vec vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = mask(i);
      Vec z = _mm512_maskz_loadu_ps(m, s + i);
      if (scale != 1.0f) z = _mm512_mul_ps(z, vscale);
      if (bias != nullptr) z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(m, bias + i));
      _mm512_mask_storeu_ps(s + i, m, z);
      vmax = _mm512_mask_max_ps(vmax, m, vmax, z);
    }
    const Vec top = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    Vec vsum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = mask(i);
      const Vec e = Exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + i), top));
      _mm512_mask_storeu_ps(s + i, m, e);
      vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
    }
    const Vec total = _mm512_set1_ps(_mm512_reduce_add_ps(vsum));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = mask(i);
      _mm512_mask_storeu_ps(s + i, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, s + i), total));
    }
  }
};

// Rows-in-lanes tiles for fp32 weights, at kXtMinRows to 16 rows (a decode step of a busy
// batch) and from kXtGroupMinRows rows on (prefill chunks). The 4x4 tiles above keep the
// in-features in the lanes: a weight vector read once feeds 4 rows, so past 4 rows every
// weight comes from memory for the first row tile and again from L2 for each later one, and
// every (row, output) pair ends in a horizontal sum. Here the activations are first transposed
// into xt[in][16] per group of 16 rows (rows in the lanes, zero-padded), and one accumulator
// holds one output for all 16 rows: each weight is the broadcast memory operand of a single
// multiply-add that serves every row at once, with no horizontal sums. At up to 16 rows the
// weights stream from memory exactly once, with no pass from L2.
//
// Measured on Zen 5 (two cores; the 48 Llama-110m layer matrices streamed from memory; best of
// alternating runs against the 4x4 tiles in one session): 16 rows 15.7 -> 11.1 ms (~7% of it
// the prefetch in XtRun16), 64 rows 47.0 -> 40.6 ms and 256 rows 173 -> 137 ms (XtGroups,
// ~313 GFLOP/s: 74% of the FMA peak); 1 to 8 rows unchanged. At 8 rows the 4x4 tiles are
// faster (half the lanes here are padding), at 12 they are even, and at 17 to 24 rows they
// are faster than two groups in XtGroups (then at most 24 of 32 rows are real); from 25 rows on
// XtGroups, with its groups in pairs, is faster (alternating runs: 28 rows 25.1 -> 23.6 ms, 32
// rows 28.2 -> 23.9, 48 rows 39.6 -> 32.8, 63 rows 52.9 -> 38.7, against the 4x4 tiles; 20
// rows 20.0 -> 23.1, 17 rows 18.6 -> 23.1). Inside the model
// the 512-row serving prefill's linear layers took the same ~300 ms with XtGroups as with the
// 4x4 tiles (not understood yet; the padded prefill gained ~10%).
constexpr int kXtRows = 16;  // StoreLaneSums (kernels_internal.h) reads sums as 16 lanes
constexpr int kXtMinRows = 12;
constexpr int64_t kXtGroupMinRows = 25;
// XtGroups' rows per call at most: larger calls go in slices, so the per-thread buffers (xt
// and the partial sums) stay bounded.
constexpr int64_t kXtGroupMaxRows = 1024;
// In-features per chunk in XtGroups: one group's chunk of xt (16 KiB) stays in L1.
constexpr int64_t kXtChunk = 256;
// 16-output tiles per panel in XtGroups: their copied weights (~136 KiB) stay in L2.
constexpr int64_t kXtPanelTiles = 8;

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

// In-feature J of the current 16 for 4Q weight rows (groups of 4 at b[0..Q)).
template <int J, int Q>
TRIAD_KERNEL_TARGET __attribute__((always_inline)) inline void XtStep16(
    const char* const (&b)[Q], int64_t s, int64_t s3, const float* xt, __m512 (&acc)[4 * Q]) {
  const __m512 x = _mm512_loadu_ps(xt + J * kXtRows);
  for (int g = 0; g < Q; ++g) {
    XtStep4<J>(b[g], s, s3, x, acc[4 * g], acc[4 * g + 1], acc[4 * g + 2], acc[4 * g + 3]);
  }
}

// 16 in-features of 4Q weight rows. Always inlined: as a call, the accumulators would go
// through memory on every in-feature.
template <int Q, int... J>
TRIAD_KERNEL_TARGET __attribute__((always_inline)) inline void XtBlock16(
    const char* const (&b)[Q], int64_t s, int64_t s3, const float* xt, __m512 (&acc)[4 * Q],
    std::integer_sequence<int, J...>) {
  (XtStep16<J, Q>(b, s, s3, xt, acc), ...);
}

// in-features [i, i + 16 * n) of the 4Q weight rows from `rows` on (row stride s bytes). With
// kPrefetch, each row's line 256 bytes ahead is prefetched into L1 once per 16 in-features: with
// the weights streaming from memory, 16 rows measured ~7% faster so (11.6 against 10.8 ms over
// the Llama-110m layers, six alternating runs), while 128, 192 and 512 bytes ahead, or into L2,
// gained nothing; from XtGroups' copies in L2 it gained nothing either. Streaming, XtTile takes
// 8 weight rows at a time (Q = 2): eight streams rather than sixteen measured 5-15% faster at 16
// activation rows (Llama-110m layers, five alternating runs: 9.9-11.4 against 11.0-12.3 ms),
// twelve no faster than eight; XtGroups' copies take 16 (Q = 4).
template <bool kPrefetch, int Q = 4>
TRIAD_KERNEL_TARGET __attribute__((always_inline)) inline void XtRun16(
    const char* rows, int64_t s, const float* xt, int64_t n, __m512 (&acc)[4 * Q]) {
  constexpr int kAhead = 256;
  const int64_t s3 = 3 * s;
  const char* b[Q];
  for (int q = 0; q < Q; ++q) b[q] = rows + 4 * q * s;
  for (int64_t block = 0; block < n; ++block) {
    if constexpr (kPrefetch) {
      for (const char* p : b) {
        __builtin_prefetch(p + kAhead, 0, 3);
        __builtin_prefetch(p + s + kAhead, 0, 3);
        __builtin_prefetch(p + 2 * s + kAhead, 0, 3);
        __builtin_prefetch(p + s3 + kAhead, 0, 3);
      }
    }
    XtBlock16(b, s, s3, xt + block * 16 * kXtRows, acc, std::make_integer_sequence<int, 16>());
    for (const char*& p : b) p += 16 * sizeof(float);
  }
}

// In-features [begin, end) one at a time, for O weight rows `stride` floats apart (the
// remainder past the last full 16).
template <int O>
TRIAD_KERNEL_TARGET inline void XtSingles(const float* w, int64_t stride, const float* xt,
                                          int64_t begin, int64_t end, __m512 (&acc)[O]) {
  for (int64_t i = begin; i < end; ++i) {
    const __m512 x = _mm512_loadu_ps(xt + i * kXtRows);
    for (int o = 0; o < O; ++o) acc[o] = _mm512_fmadd_ps(x, _mm512_set1_ps(w[o * stride + i]), acc[o]);
  }
}

// y[:, out + o] for o < O over all in-features (O = 8 streams from XtRun16 with prefetch).
template <int O>
TRIAD_KERNEL_TARGET void XtTile(const LinearArgs<float>& a, const float* xt, int64_t out) {
  const int64_t in = a.in_features;
  const float* w = a.w + out * in;
  __m512 acc[O];
  for (__m512& v : acc) v = _mm512_setzero_ps();
  int64_t i = 0;
  if constexpr (O == 8) {
    const int64_t n = in / 16;
    XtRun16<true, O / 4>(reinterpret_cast<const char*>(w), in * int64_t{sizeof(float)}, xt, n, acc);
    i = 16 * n;
  }
  XtSingles<O>(w, in, xt, i, in, acc);
  alignas(64) float sums[O * kXtRows];
  for (int o = 0; o < O; ++o) _mm512_store_ps(sums + o * kXtRows, acc[o]);
  StoreLaneSums<O>(a, sums, 0, a.num_rows, out);
}

// Floats per copied weight row in XtGroups' panel: a chunk plus 16, so that a tile's 16 rows
// fall into different L1 sets.
constexpr int64_t kXtPanelStride = kXtChunk + 16;

// XtGroups' inner product for G groups of 16 rows (G row vectors) and O outputs of a panel
// tile: per in-feature, G loads of xt and O broadcasts of a weight, each broadcast feeding G
// multiply-adds. With G = 2 and O = 8 that is 10 loads for 16 multiply-adds, where one group
// against 16 outputs takes 17 (and runs out of load ports before the two FMA pipes fill).
// `w`: the first of the O copied weight rows (kXtPanelStride apart); in-features [k, k + n)
// of groups [g, g + G); partial sums at sums + (group * kTileSums) + o * kXtRows.
template <int O>
TRIAD_KERNEL_TARGET void XtPanelTile(const float* w, const float* xt, int64_t in, int64_t k,
                                     int64_t n, int64_t g, float* sums) {
  constexpr int64_t kTileSums = 16 * kXtRows;
  const float* x0 = xt + (g * in + k) * kXtRows;
  const float* x1 = x0 + in * kXtRows;
  float* s0 = sums + g * kTileSums;
  float* s1 = s0 + kTileSums;
  __m512 a0[O], a1[O];
  for (int o = 0; o < O; ++o) {
    a0[o] = k == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(s0 + o * kXtRows);
    a1[o] = k == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(s1 + o * kXtRows);
  }
  for (int64_t j = 0; j < n; ++j) {
    __m512 v0 = _mm512_loadu_ps(x0 + j * kXtRows);
    __m512 v1 = _mm512_loadu_ps(x1 + j * kXtRows);
    asm("" : "+v"(v0), "+v"(v1));
    for (int o = 0; o < O; ++o) {
      __m512 wb = _mm512_set1_ps(w[o * kXtPanelStride + j]);
      asm("" : "+v"(wb));
      a0[o] = _mm512_fmadd_ps(v0, wb, a0[o]);
      a1[o] = _mm512_fmadd_ps(v1, wb, a1[o]);
    }
  }
  for (int o = 0; o < O; ++o) {
    _mm512_storeu_ps(s0 + o * kXtRows, a0[o]);
    _mm512_storeu_ps(s1 + o * kXtRows, a1[o]);
  }
}

// kXtGroupMinRows rows or more (prefill chunks), as a GEMM: the rows in groups of 16, each
// transposed as above, and the in-features in chunks of kXtChunk. For each chunk, a panel of
// kXtPanelTiles 16-output tiles copies its weights once into a buffer that stays in L2 (rows
// padded so that a tile's 16 fall into different L1 sets); then each group's chunk of xt
// (in L1) runs over every tile of the panel, adding to the partial sums of that tile and
// group (16 vectors, in `sums`): two groups at a time through XtPanelTile, an odd last one
// alone with 16 outputs a pass. Outputs past the last full tile of 16 take the 4x4 tiles.
// Pairing the groups measured, on the Llama-110m layer matrices (two Zen 5 cores, alternating
// runs of a standalone harness): 64 rows 39-41 -> 35-37 ms, 256 rows 134-141 -> 119-125 ms
// (~360 GFLOP/s, ~82% of the FMA peak). Three groups at a time (24 accumulators) measured no
// better than two; prefetching the next panel into L2 while one computes (a line per 4
// in-features) measured no better either, though the copy's loads stall ~20% of the time at
// 64 rows.
TRIAD_KERNEL_TARGET void XtGroups(const LinearArgs<float>& a, const float* xt, int64_t groups,
                                  int64_t out_begin, int64_t out_end) {
  constexpr int64_t kStride = kXtPanelStride;
  constexpr int64_t kTileFloats = 16 * kStride;
  constexpr int64_t kTileSums = 16 * kXtRows;  // one tile's accumulators for one group
  thread_local std::vector<float> sums_buffer, panel_buffer;
  const int64_t in = a.in_features;
  const int64_t tiles = (out_end - out_begin) / 16;
  if (static_cast<int64_t>(sums_buffer.size()) < tiles * groups * kTileSums) {
    sums_buffer.resize(tiles * groups * kTileSums);
  }
  if (static_cast<int64_t>(panel_buffer.size()) < kXtPanelTiles * kTileFloats) {
    panel_buffer.resize(kXtPanelTiles * kTileFloats);
  }
  float* sums = sums_buffer.data();
  float* panel = panel_buffer.data();
  for (int64_t k = 0; k < in; k += kXtChunk) {
    const int64_t n = std::min(kXtChunk, in - k), blocks = n / 16;
    for (int64_t t0 = 0; t0 < tiles; t0 += kXtPanelTiles) {
      const int64_t panel_tiles = std::min(kXtPanelTiles, tiles - t0);
      for (int64_t t = 0; t < panel_tiles; ++t) {
        const float* w = a.w + (out_begin + 16 * (t0 + t)) * in + k;
        float* to = panel + t * kTileFloats;
        for (int o = 0; o < 16; ++o) {
          int64_t v = 0;
          for (; v + 16 <= n; v += 16) {
            _mm512_storeu_ps(to + o * kStride + v, _mm512_loadu_ps(w + o * in + v));
          }
          for (; v < n; ++v) to[o * kStride + v] = w[o * in + v];
        }
      }
      int64_t g = 0;
      for (; g + 2 <= groups; g += 2) {
        for (int64_t t = 0; t < panel_tiles; ++t) {
          for (int half = 0; half < 2; ++half) {
            XtPanelTile<8>(panel + t * kTileFloats + half * 8 * kStride, xt, in, k, n, g,
                           sums + (t0 + t) * groups * kTileSums + half * 8 * kXtRows);
          }
        }
      }
      for (; g < groups; ++g) {
        const float* group_xt = xt + (g * in + k) * kXtRows;
        for (int64_t t = 0; t < panel_tiles; ++t) {
          const float* weights = panel + t * kTileFloats;
          float* tile_sums = sums + ((t0 + t) * groups + g) * kTileSums;
          __m512 acc[16];
          for (int o = 0; o < 16; ++o) {
            acc[o] = k == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(tile_sums + o * kXtRows);
          }
          XtRun16<false>(reinterpret_cast<const char*>(weights), kStride * sizeof(float), group_xt,
                         blocks, acc);
          XtSingles<16>(weights, kStride, group_xt, 16 * blocks, n, acc);
          for (int o = 0; o < 16; ++o) _mm512_storeu_ps(tile_sums + o * kXtRows, acc[o]);
        }
      }
    }
  }
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t g = 0; g < groups; ++g) {
      StoreLaneSums<16>(a, sums + (t * groups + g) * kTileSums, g * kXtRows,
                        std::min<int64_t>(kXtRows, a.num_rows - g * kXtRows), out_begin + 16 * t);
    }
  }
  if (out_begin + 16 * tiles < out_end) {
    LinearRange<Avx512Ops>(a, out_begin + 16 * tiles, out_end);
  }
}

// Outputs [out_begin, out_end) of every row (kXtMinRows <= num_rows <= kXtRows, or
// kXtGroupMinRows <= num_rows <= kXtGroupMaxRows). Each thread transposes its own copy of x
// (num_rows * in floats, small beside the weights).
TRIAD_KERNEL_TARGET void XtRange(const LinearArgs<float>& a, int64_t out_begin, int64_t out_end) {
  thread_local std::vector<float> xt_buffer;
  const int64_t in = a.in_features;
  const int64_t groups = (a.num_rows + kXtRows - 1) / kXtRows;
  if (static_cast<int64_t>(xt_buffer.size()) < groups * in * kXtRows) {
    xt_buffer.resize(groups * in * kXtRows);
  }
  float* xt = xt_buffer.data();
  for (int64_t g = 0; g < groups; ++g) {
    float* group_xt = xt + g * in * kXtRows;
    const int64_t rows = std::min<int64_t>(kXtRows, a.num_rows - g * kXtRows);
    const float* x = a.x + g * kXtRows * in;
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t r = 0; r < kXtRows; ++r) {
        group_xt[i * kXtRows + r] = r < rows ? x[r * in + i] : 0.0f;
      }
    }
  }
  if (groups > 1) {
    XtGroups(a, xt, groups, out_begin, out_end);
    return;
  }
  int64_t out = out_begin;
  for (; out + 8 <= out_end; out += 8) XtTile<8>(a, xt, out);
  for (; out + 4 <= out_end; out += 4) XtTile<4>(a, xt, out);
  for (; out < out_end; ++out) XtTile<1>(a, xt, out);
}

}  // namespace

void LinearRangeAvx512(const LinearArgs<float>& args, int64_t out_begin, int64_t out_end) {
  if (args.num_rows >= kXtMinRows && args.num_rows <= kXtRows) {
    XtRange(args, out_begin, out_end);
  } else if (args.num_rows >= kXtGroupMinRows) {
    for (int64_t row = 0; row < args.num_rows; row += kXtGroupMaxRows) {
      LinearArgs<float> slice = args;
      slice.x += row * args.in_features;
      slice.y += row * args.out_features;
      slice.num_rows = std::min(kXtGroupMaxRows, args.num_rows - row);
      if (slice.num_rows >= kXtGroupMinRows) {
        XtRange(slice, out_begin, out_end);
      } else {
        LinearRange<Avx512Ops>(slice, out_begin, out_end);
      }
    }
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
