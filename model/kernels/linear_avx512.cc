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

}  // namespace

TRIAD_DEFINE_LINEAR_RANGE(LinearRangeAvx512, Avx512Ops)
TRIAD_DEFINE_ROWS(Avx512, Avx512Ops)

}  // namespace triad::kernels::internal

#endif  // x86
