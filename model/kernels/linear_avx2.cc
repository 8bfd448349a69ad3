// LinearRange kernels for AVX2 + FMA (8 fp32 lanes), the path that matters on Zen 2/3 and
// pre-AVX-512 Intel. bf16 weights widen to fp32 by zero-extending each 16-bit value to 32
// bits and shifting it into the upper half, which is exact and costs two cheap instructions
// per 8 weights, far less than the memory time of their 16 bytes.
#include <cstdint>

#include "model/kernels/kernels_internal.h"

// Only x86 has these kernels; linear.cc never dispatches to them elsewhere.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TRIAD_KERNEL_TARGET __attribute__((target("avx2,fma")))
#include "model/kernels/linear_tile_inl.h"
#include "model/kernels/rows_inl.h"

namespace triad::kernels::internal {
namespace {

struct Avx2Ops {
  using Vec = __m256;
  static constexpr int kLanes = 8;
  // Tiles of more than 4 rows prefetch the next panel too (measured on Zen 3, session 6).
  static constexpr bool kPrefetchPastOneRowTile = true;
  // 16 ymm registers: R*O accumulators + R activation vectors + a weight vector must fit.
  // At R = 1, four outputs share each x load: ~1.3x the single-output loop from L2.
  static constexpr int OutTile(int rows) { return rows <= 2 ? 4 : 2; }

  TRIAD_KERNEL_TARGET static Vec Zero() { return _mm256_setzero_ps(); }
  TRIAD_KERNEL_TARGET static Vec LoadX(const float* p) { return _mm256_loadu_ps(p); }
  TRIAD_KERNEL_TARGET static Vec LoadW(const float* p) { return _mm256_loadu_ps(p); }
  TRIAD_KERNEL_TARGET static Vec LoadW(const uint16_t* p) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
  TRIAD_KERNEL_TARGET static Vec MulAdd(Vec a, Vec b, Vec acc) {
    return _mm256_fmadd_ps(a, b, acc);
  }
  TRIAD_KERNEL_TARGET static Vec Add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  TRIAD_KERNEL_TARGET static Vec Broadcast(float x) { return _mm256_set1_ps(x); }
  TRIAD_KERNEL_TARGET static void Store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  TRIAD_KERNEL_TARGET static float ReduceAdd(Vec v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
  }
};

// One activation row (batch-1 decode), the case that must run at memory speed: four weight
// rows at a time, two accumulators each, nothing but loads and FMAs in the loop. The generic
// tile reached ~10 GB/s of bf16 from memory on Zen 3 where this reaches ~15.5 (same machine,
// same run; the read probe gave ~18).
template <typename W>
TRIAD_KERNEL_TARGET float DotTail(const float* x, const W* w, int64_t from, int64_t to) {
  float sum = 0;
  for (int64_t i = from; i < to; ++i) sum += x[i] * Widen(w[i]);
  return sum;
}

template <typename W, int O>
TRIAD_KERNEL_TARGET void OneRowTile(const LinearArgs<W>& a, int64_t out) {
  const int64_t in = a.in_features, body = in - in % 16;
  __m256 acc[O][2];
  for (int o = 0; o < O; ++o) acc[o][0] = acc[o][1] = _mm256_setzero_ps();
  const W* w = a.w + out * in;
  for (int64_t i = 0; i < body; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(a.x + i), x1 = _mm256_loadu_ps(a.x + i + 8);
    for (int o = 0; o < O; ++o) {
      acc[o][0] = _mm256_fmadd_ps(Avx2Ops::LoadW(w + o * in + i), x0, acc[o][0]);
      acc[o][1] = _mm256_fmadd_ps(Avx2Ops::LoadW(w + o * in + i + 8), x1, acc[o][1]);
    }
  }
  for (int o = 0; o < O; ++o) {
    const float bias = a.bias != nullptr ? a.bias[out + o] : 0.0f;
    a.y[out + o] = Avx2Ops::ReduceAdd(_mm256_add_ps(acc[o][0], acc[o][1])) +
                   DotTail(a.x, w + o * in, body, in) + bias;
  }
}

template <typename W>
TRIAD_KERNEL_TARGET void Range(const LinearArgs<W>& a, int64_t out_begin, int64_t out_end) {
  if (a.num_rows != 1) {
    LinearRange<Avx2Ops>(a, out_begin, out_end);
    return;
  }
  int64_t out = out_begin;
  for (; out + 4 <= out_end; out += 4) OneRowTile<W, 4>(a, out);
  for (; out < out_end; ++out) OneRowTile<W, 1>(a, out);
}

}  // namespace

TRIAD_DEFINE_ROWS(Avx2, Avx2Ops)

void LinearRangeAvx2(const LinearArgs<float>& args, int64_t out_begin, int64_t out_end) {
  Range(args, out_begin, out_end);
}
void LinearRangeAvx2(const LinearArgs<uint16_t>& args, int64_t out_begin, int64_t out_end) {
  Range(args, out_begin, out_end);
}

}  // namespace triad::kernels::internal

#endif  // x86
