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

namespace triad::kernels::internal {
namespace {

struct Avx2Ops {
  using Vec = __m256;
  static constexpr int kLanes = 8;
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
  TRIAD_KERNEL_TARGET static float ReduceAdd(Vec v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
  }
};

}  // namespace

TRIAD_DEFINE_LINEAR_RANGE(LinearRangeAvx2, Avx2Ops)

}  // namespace triad::kernels::internal

#endif  // x86
