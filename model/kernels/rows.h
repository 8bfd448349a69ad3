// Public API of triad_kernels for attention over cached rows: the inner products and the
// weighted sums of a decode query against a run of key or value rows (one KV block of a
// paged cache) and the softmax between them, vectorised for the CPU at hand.
//
// Thread contract: stateless, single-threaded; callers parallelise over queries and heads.
#ifndef TRIAD_MODEL_KERNELS_ROWS_H_
#define TRIAD_MODEL_KERNELS_ROWS_H_

#include <cstdint>

namespace triad::kernels {

// out[i] = sum_d q[d] * rows[i * dim + d] for i < n: float32 products and sums (the rows are
// float32, or bfloat16 bits widened exactly). n, dim >= 0.
void DotRowsF32(const float* q, const float* rows, int64_t n, int64_t dim, float* out);
void DotRowsBf16(const float* q, const uint16_t* rows, int64_t n, int64_t dim, float* out);

// acc[d] += sum_i p[i] * rows[i * dim + d] for d < dim (float32 sums, in an order of the
// kernel's choosing).
void AxpyRowsF32(const float* p, const float* rows, int64_t n, int64_t dim, float* acc);
void AxpyRowsBf16(const float* p, const uint16_t* rows, int64_t n, int64_t dim, float* acc);

// The softmax of scaled, biased scores, in place: z[i] = scores[i] * scale (skipped when scale
// is 1) + bias[i] (skipped when bias is null), then scores[i] = exp(z[i] - max z) / sum of
// them, in float32. n >= 1. With AVX-512 the exponential is a vectorised polynomial within
// ~2 ulp of std::exp (which the other paths use) and the sums run in vector order.
void ScaledSoftmaxF32(float* scores, int64_t n, float scale, const float* bias);

}  // namespace triad::kernels

#endif  // TRIAD_MODEL_KERNELS_ROWS_H_
