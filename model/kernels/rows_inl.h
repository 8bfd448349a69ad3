// The DotRows / AxpyRows / ScaledSoftmax loops of rows.h, written once over the same `Ops`
// policy as linear_tile_inl.h (plus Broadcast and Store; with 16 lanes also Sum16 and
// ScaledSoftmax). Include only from a per-ISA .cc file, after
// defining TRIAD_KERNEL_TARGET; everything is in an anonymous namespace for the same reason
// as there (no AVX symbol may be merged into a caller built for a lesser CPU).
#ifndef TRIAD_MODEL_KERNELS_ROWS_INL_H_
#define TRIAD_MODEL_KERNELS_ROWS_INL_H_

#ifndef TRIAD_KERNEL_TARGET
#error "define TRIAD_KERNEL_TARGET before including rows_inl.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "model/kernels/bf16.h"

namespace triad::kernels::internal {
namespace {

// R rows against q: one q load feeds R multiply-adds; the sub-vector tail of each row is
// summed in scalar after the vector part.
template <class Ops, int R, typename W>
TRIAD_KERNEL_TARGET void DotTile(const float* q, const W* rows, int64_t dim, float* out) {
  using Vec = typename Ops::Vec;
  constexpr int kLanes = Ops::kLanes;
  const int64_t body = dim - dim % kLanes;
  Vec acc[R];
  for (int r = 0; r < R; ++r) acc[r] = Ops::Zero();
  for (int64_t d = 0; d < body; d += kLanes) {
    const Vec qv = Ops::LoadX(q + d);
    for (int r = 0; r < R; ++r) acc[r] = Ops::MulAdd(qv, Ops::LoadW(rows + r * dim + d), acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    float tail = 0;
    for (int64_t d = body; d < dim; ++d) tail += q[d] * Widen(rows[r * dim + d]);
    out[r] = Ops::ReduceAdd(acc[r]) + tail;
  }
}

// Sixteen rows whose sums land in one vector (Ops::Sum16: a transposing reduction of the 16
// accumulators, ~45 instructions against ~8 per row for separate horizontal sums): AVX-512
// only, where one vector holds 16 floats.
template <class Ops, typename W>
TRIAD_KERNEL_TARGET void DotTile16(const float* q, const W* rows, int64_t dim, float* out) {
  using Vec = typename Ops::Vec;
  constexpr int kLanes = Ops::kLanes;
  const int64_t body = dim - dim % kLanes;
  Vec acc[16];
  for (int r = 0; r < 16; ++r) acc[r] = Ops::Zero();
  for (int64_t d = 0; d < body; d += kLanes) {
    const Vec qv = Ops::LoadX(q + d);
    for (int r = 0; r < 16; ++r) acc[r] = Ops::MulAdd(qv, Ops::LoadW(rows + r * dim + d), acc[r]);
  }
  Ops::Store(out, Ops::Sum16(acc));
  if (body == dim) return;
  for (int r = 0; r < 16; ++r) {
    float tail = 0;
    for (int64_t d = body; d < dim; ++d) tail += q[d] * Widen(rows[r * dim + d]);
    out[r] += tail;
  }
}

// Eight rows at a time: a head's dimension is only a few vectors long (64 floats: 4 with
// AVX-512), so fewer rows would leave the multiply-add chains too short to hide its latency.
template <class Ops, typename W>
TRIAD_KERNEL_TARGET void DotRows(const float* q, const W* rows, int64_t n, int64_t dim,
                                 float* out) {
  int64_t i = 0;
  if constexpr (Ops::kLanes == 16) {
    for (; i + 16 <= n; i += 16) DotTile16<Ops>(q, rows + i * dim, dim, out + i);
  }
  for (; i + 8 <= n; i += 8) DotTile<Ops, 8>(q, rows + i * dim, dim, out + i);
  for (; i + 4 <= n; i += 4) DotTile<Ops, 4>(q, rows + i * dim, dim, out + i);
  for (; i < n; ++i) DotTile<Ops, 1>(q, rows + i * dim, dim, out + i);
}

// acc[d0 .. d0 + V * kLanes) += the rows' weighted sum over those elements: V vectors held in
// registers across the rows, with even and odd rows in separate accumulators (2V independent
// multiply-add chains rather than V).
template <class Ops, int V, typename W>
TRIAD_KERNEL_TARGET void AxpyVectors(const float* p, const W* rows, int64_t n, int64_t dim,
                                     float* acc) {
  using Vec = typename Ops::Vec;
  constexpr int kLanes = Ops::kLanes;
  Vec even[V], odd[V];
  for (int v = 0; v < V; ++v) {
    even[v] = Ops::LoadX(acc + v * kLanes);
    odd[v] = Ops::Zero();
  }
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const Vec p0 = Ops::Broadcast(p[i]), p1 = Ops::Broadcast(p[i + 1]);
    for (int v = 0; v < V; ++v) {
      even[v] = Ops::MulAdd(p0, Ops::LoadW(rows + i * dim + v * kLanes), even[v]);
      odd[v] = Ops::MulAdd(p1, Ops::LoadW(rows + (i + 1) * dim + v * kLanes), odd[v]);
    }
  }
  if (i < n) {
    const Vec p0 = Ops::Broadcast(p[i]);
    for (int v = 0; v < V; ++v) {
      even[v] = Ops::MulAdd(p0, Ops::LoadW(rows + i * dim + v * kLanes), even[v]);
    }
  }
  for (int v = 0; v < V; ++v) Ops::Store(acc + v * kLanes, Ops::Add(even[v], odd[v]));
}

template <class Ops, typename W>
TRIAD_KERNEL_TARGET void AxpyRows(const float* p, const W* rows, int64_t n, int64_t dim,
                                  float* acc) {
  constexpr int kLanes = Ops::kLanes;
  int64_t d = 0;
  for (; d + 4 * kLanes <= dim; d += 4 * kLanes) AxpyVectors<Ops, 4>(p, rows + d, n, dim, acc + d);
  for (; d + kLanes <= dim; d += kLanes) AxpyVectors<Ops, 1>(p, rows + d, n, dim, acc + d);
  for (; d < dim; ++d) {
    for (int64_t i = 0; i < n; ++i) acc[d] += p[i] * Widen(rows[i * dim + d]);
  }
}

// rows.h's ScaledSoftmaxF32: the ISA's vector version where Ops has one (AVX-512), else the
// scalar loop with std::exp.
template <class Ops>
TRIAD_KERNEL_TARGET void ScaledSoftmax(float* scores, int64_t n, float scale, const float* bias) {
  if constexpr (Ops::kLanes == 16) {
    Ops::ScaledSoftmax(scores, n, scale, bias);
  } else {
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) {
      float z = scores[i];
      if (scale != 1.0f) z *= scale;
      if (bias != nullptr) z += bias[i];
      scores[i] = z;
      max_score = std::max(max_score, z);
    }
    float sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      scores[i] = std::exp(scores[i] - max_score);
      sum += scores[i];
    }
    for (int64_t i = 0; i < n; ++i) scores[i] /= sum;
  }
}

}  // namespace
}  // namespace triad::kernels::internal

// Defines one ISA's five entry points from kernels_internal.h; expand inside namespace
// triad::kernels::internal.
#define TRIAD_DEFINE_ROWS(suffix, ops)                                                       \
  void DotRows##suffix(const float* q, const float* rows, int64_t n, int64_t dim,           \
                       float* out) {                                                        \
    DotRows<ops>(q, rows, n, dim, out);                                                     \
  }                                                                                         \
  void DotRows##suffix(const float* q, const uint16_t* rows, int64_t n, int64_t dim,        \
                       float* out) {                                                        \
    DotRows<ops>(q, rows, n, dim, out);                                                     \
  }                                                                                         \
  void AxpyRows##suffix(const float* p, const float* rows, int64_t n, int64_t dim,          \
                        float* acc) {                                                       \
    AxpyRows<ops>(p, rows, n, dim, acc);                                                    \
  }                                                                                         \
  void AxpyRows##suffix(const float* p, const uint16_t* rows, int64_t n, int64_t dim,       \
                        float* acc) {                                                       \
    AxpyRows<ops>(p, rows, n, dim, acc);                                                    \
  }                                                                                         \
  void ScaledSoftmax##suffix(float* scores, int64_t n, float scale, const float* bias) {    \
    ScaledSoftmax<ops>(scores, n, scale, bias);                                             \
  }

#endif  // TRIAD_MODEL_KERNELS_ROWS_INL_H_
