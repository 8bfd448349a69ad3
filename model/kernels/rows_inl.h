// The DotRows / AxpyRows loops of rows.h, written once over the same `Ops` policy as
// linear_tile_inl.h (plus Broadcast and Store). Include only from a per-ISA .cc file, after
// defining TRIAD_KERNEL_TARGET; everything is in an anonymous namespace for the same reason
// as there (no AVX symbol may be merged into a caller built for a lesser CPU).
#ifndef TRIAD_MODEL_KERNELS_ROWS_INL_H_
#define TRIAD_MODEL_KERNELS_ROWS_INL_H_

#ifndef TRIAD_KERNEL_TARGET
#error "define TRIAD_KERNEL_TARGET before including rows_inl.h"
#endif

#include <cstdint>

#include "model/kernels/bf16.h"

namespace triad::kernels::internal {
namespace {

inline float WidenOne(float w) { return w; }
inline float WidenOne(uint16_t w) { return Bf16ToFloat(w); }

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
    for (int64_t d = body; d < dim; ++d) tail += q[d] * WidenOne(rows[r * dim + d]);
    out[r] = Ops::ReduceAdd(acc[r]) + tail;
  }
}

template <class Ops, typename W>
TRIAD_KERNEL_TARGET void DotRows(const float* q, const W* rows, int64_t n, int64_t dim,
                                 float* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) DotTile<Ops, 4>(q, rows + i * dim, dim, out + i);
  for (; i < n; ++i) DotTile<Ops, 1>(q, rows + i * dim, dim, out + i);
}

template <class Ops, typename W>
TRIAD_KERNEL_TARGET void AxpyRows(const float* p, const W* rows, int64_t n, int64_t dim,
                                  float* acc) {
  using Vec = typename Ops::Vec;
  constexpr int kLanes = Ops::kLanes;
  int64_t d = 0;
  for (; d + kLanes <= dim; d += kLanes) {
    Vec a = Ops::LoadX(acc + d);
    for (int64_t i = 0; i < n; ++i) {
      a = Ops::MulAdd(Ops::Broadcast(p[i]), Ops::LoadW(rows + i * dim + d), a);
    }
    Ops::Store(acc + d, a);
  }
  for (; d < dim; ++d) {
    for (int64_t i = 0; i < n; ++i) acc[d] += p[i] * WidenOne(rows[i * dim + d]);
  }
}

}  // namespace
}  // namespace triad::kernels::internal

// Defines one ISA's four entry points from kernels_internal.h; expand inside namespace
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
  }

#endif  // TRIAD_MODEL_KERNELS_ROWS_INL_H_
