// The register-tiled loop nest behind every LinearRange<Isa> kernel, written once over an
// `Ops` policy (vector type, lane count, loads, multiply-add, horizontal sum).
//
// Include only from a per-ISA .cc file, after defining TRIAD_KERNEL_TARGET to that file's
// `__attribute__((target(...)))` (or to nothing for the scalar build). Everything here is in
// an anonymous namespace on purpose: each including file compiles its own copy for its own
// ISA, and no symbol with AVX code can be merged into a caller built for a lesser CPU.
#ifndef TRIAD_MODEL_KERNELS_LINEAR_TILE_INL_H_
#define TRIAD_MODEL_KERNELS_LINEAR_TILE_INL_H_

#ifndef TRIAD_KERNEL_TARGET
#error "define TRIAD_KERNEL_TARGET before including linear_tile_inl.h"
#endif

#include <cstdint>

#include "model/kernels/kernels_internal.h"

namespace triad::kernels::internal {
namespace {

// Activation rows per register tile. A weight vector loaded once feeds this many rows.
constexpr int kRowTile = 4;

// Independent accumulator chains per tile: multiply-add latency (4 cycles) times the two
// FMA ports wants ~8 in flight, so small tiles unroll along in_features to get there.
constexpr int Unroll(int rows, int outs) {
  const int tile = rows * outs;
  return tile >= 8 ? 1 : (tile >= 4 ? 2 : 4);
}

constexpr int64_t MinIndex(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int64_t MaxIndex(int64_t a, int64_t b) { return a > b ? a : b; }

// Runs one in-features step of kLanes elements for every (row, out) pair of the tile. The
// empty asm keeps each activation vector in a register: otherwise GCC folds the x loads into
// the multiply-adds, R*O loads per step instead of R, and the tile runs out of load ports
// (measured ~1.3x slower from L2 at 16 rows on Zen 3).
template <class Ops, int R, int O, typename W>
TRIAD_KERNEL_TARGET inline void TileStep(const float* const* x, const W* const* w, int64_t i,
                                         typename Ops::Vec (&acc)[R][O]) {
  typename Ops::Vec xv[R];
  for (int r = 0; r < R; ++r) {
    xv[r] = Ops::LoadX(x[r] + i);
    if constexpr (Ops::kLanes > 1) asm("" : "+v"(xv[r]));
  }
  for (int o = 0; o < O; ++o) {
    const typename Ops::Vec wv = Ops::LoadW(w[o] + i);
    for (int r = 0; r < R; ++r) acc[r][o] = Ops::MulAdd(xv[r], wv, acc[r][o]);
  }
}

// In-features per pass of a tile: a row tile's slice of x (kRowTile rows of fp32) stays in
// L1 while the panel's output tiles go over it. Without this split, 4 rows of a 2048-wide x
// (32 KiB) fill Zen 3's L1 and every tile step re-reads x from L2.
constexpr int64_t kChunkBytes = 16 * 1024;
// Weight bytes of one panel (its outputs over one chunk of in-features): small enough to stay
// in L2 (512 KiB on Zen 3) while every row tile passes over it, so memory supplies each
// weight once and the other row tiles read it from L2.
constexpr int64_t kPanelBytes = 192 * 1024;

// One pass of a row tile over a panel: in-features [k_begin, k_end); whether to add to y (a
// later chunk) or store with the bias (the first); and the prefetch of the next (panel,
// chunk) into L2: when `prefetch` is nonzero, the output tiles j with j % stride == phase
// that start below `prefetch_below` also prefetch the weights `prefetch` elements ahead of
// each cache line they read.
struct Pass {
  int64_t k_begin = 0, k_end = 0;
  bool accumulate = false;
  int64_t prefetch = 0;
  int64_t prefetch_below = 0;
  int64_t stride = 1, phase = 0;
};

// Partial sums of y[row + r, out + o] over in-features [k_begin, k_end), r < R, o < O, with
// R*O*K vector accumulators; added to y when `accumulate`, else stored with the bias added.
// An in-features remainder (< kLanes, only at the end of x) is done on zero-padded copies so
// the tail takes the same arithmetic as the body. The only software prefetch is the next
// panel's (see LinearRange): on Zen 3, prefetching 256 B to 2 KiB ahead within each weight
// row measured no better than the hardware prefetcher (within run-to-run noise).
template <class Ops, int R, int O, typename W>
TRIAD_KERNEL_TARGET void Tile(const LinearArgs<W>& a, int64_t row, int64_t out, const Pass& pass) {
  using Vec = typename Ops::Vec;
  constexpr int kLanes = Ops::kLanes;
  constexpr int K = Unroll(R, O);
  const int64_t in = a.in_features, k_end = pass.k_end;
  const float* x[R];
  const W* w[O];
  for (int r = 0; r < R; ++r) x[r] = a.x + (row + r) * in;
  for (int o = 0; o < O; ++o) w[o] = a.w + (out + o) * in;

  Vec acc[K][R][O];
  for (int k = 0; k < K; ++k) {
    for (int r = 0; r < R; ++r) {
      for (int o = 0; o < O; ++o) acc[k][r][o] = Ops::Zero();
    }
  }
  constexpr int64_t kLineElements = 64 / sizeof(W);
  int64_t i = pass.k_begin;
  for (; i + K * kLanes <= k_end; i += K * kLanes) {
    if (pass.prefetch != 0 && i % kLineElements == 0) {
      for (int o = 0; o < O; ++o) __builtin_prefetch(w[o] + i + pass.prefetch, 0, 2);
    }
    for (int k = 0; k < K; ++k) TileStep<Ops, R, O>(x, w, i + k * kLanes, acc[k]);
  }
  for (; i + kLanes <= k_end; i += kLanes) TileStep<Ops, R, O>(x, w, i, acc[0]);
  if (i < k_end) {
    float x_tail[R][kLanes] = {};
    W w_tail[O][kLanes] = {};
    const float* x_tail_rows[R];
    const W* w_tail_rows[O];
    for (int r = 0; r < R; ++r) {
      for (int64_t j = i; j < k_end; ++j) x_tail[r][j - i] = x[r][j];
      x_tail_rows[r] = x_tail[r];
    }
    for (int o = 0; o < O; ++o) {
      for (int64_t j = i; j < k_end; ++j) w_tail[o][j - i] = w[o][j];
      w_tail_rows[o] = w_tail[o];
    }
    TileStep<Ops, R, O>(x_tail_rows, w_tail_rows, 0, acc[0]);
  }

  for (int r = 0; r < R; ++r) {
    for (int o = 0; o < O; ++o) {
      Vec sum = acc[0][r][o];
      for (int k = 1; k < K; ++k) sum = Ops::Add(sum, acc[k][r][o]);
      float& y = a.y[(row + r) * a.out_features + out + o];
      if (pass.accumulate) {
        y += Ops::ReduceAdd(sum);
      } else {
        y = Ops::ReduceAdd(sum) + (a.bias != nullptr ? a.bias[out + o] : 0.0f);
      }
    }
  }
}

// Rows [row, row + R) against outputs [out_begin, out_end), Ops::OutTile(R) outputs at a time.
template <class Ops, int R, typename W>
TRIAD_KERNEL_TARGET void RowTile(const LinearArgs<W>& a, int64_t row, int64_t out_begin,
                                 int64_t out_end, const Pass& pass) {
  constexpr int O = Ops::OutTile(R);
  Pass tile_pass = pass;
  auto prefetch = [&](int64_t out, int64_t j) {
    return j % pass.stride == pass.phase && out < pass.prefetch_below ? pass.prefetch : 0;
  };
  int64_t out = out_begin, j = 0;
  for (; out + O <= out_end; out += O, ++j) {
    tile_pass.prefetch = prefetch(out, j);
    Tile<Ops, R, O>(a, row, out, tile_pass);
  }
  for (; out < out_end; ++out, ++j) {
    tile_pass.prefetch = prefetch(out, j);
    Tile<Ops, R, 1>(a, row, out, tile_pass);
  }
}

// Outputs [out_begin, out_end) of every row. Panels of outputs are the outer loop, then
// chunks of in-features, then tiles of rows: a panel's weight chunk comes from memory for the
// first row tile and from L2 for the rest, and a row tile's chunk of x stays in L1 across the
// panel's output tiles. With one row tile (num_rows <= kRowTile) this is a single stream.
template <class Ops, typename W>
TRIAD_KERNEL_TARGET void LinearRange(const LinearArgs<W>& a, int64_t out_begin, int64_t out_end) {
  constexpr int64_t kStep = Unroll(1, 1) * Ops::kLanes;  // the longest unrolled step
  const int64_t in = a.in_features;
  const int64_t chunk_limit =
      MaxIndex(kStep, kChunkBytes / (kRowTile * int64_t{sizeof(float)}) / kStep * kStep);
  const int64_t chunk = a.num_rows <= kRowTile ? MaxIndex(in, 1) : MinIndex(MaxIndex(in, 1),
                                                                            chunk_limit);
  const int64_t panel =
      MaxIndex(kOutBlock, kPanelBytes / (chunk * int64_t{sizeof(W)}) / kOutBlock * kOutBlock);
  for (int64_t p = out_begin; p < out_end; p += panel) {
    const int64_t p_end = MinIndex(p + panel, out_end);
    int64_t k = 0;
    do {  // once even when in == 0, to store the bias
      const int64_t k_end = MinIndex(k + chunk, in);
      // The row tiles share out the prefetch of the next (panel, chunk) into L2, so memory
      // streams it while they compute from L2 rather than after them: the next chunk of
      // these outputs, else the first chunk of the next panel's (up to out_end).
      Pass pass{k, k_end, k > 0, 0, 0, (a.num_rows + kRowTile - 1) / kRowTile, 0};
      // Ops::kPrefetchPastOneRowTile: whether this CPU gains from it past one row tile.
      const bool prefetch = Ops::kPrefetchPastOneRowTile || a.num_rows <= kRowTile;
      if (prefetch && k_end < in) {
        pass.prefetch = chunk;
        pass.prefetch_below = p_end;
      } else if (prefetch && p_end < out_end) {
        pass.prefetch = panel * in - k;
        pass.prefetch_below = out_end - panel;
      }
      int64_t row = 0;
      for (; row + kRowTile <= a.num_rows; row += kRowTile, ++pass.phase) {
        RowTile<Ops, kRowTile>(a, row, p, p_end, pass);
      }
      switch (a.num_rows - row) {
        case 3:
          RowTile<Ops, 3>(a, row, p, p_end, pass);
          break;
        case 2:
          RowTile<Ops, 2>(a, row, p, p_end, pass);
          break;
        case 1:
          RowTile<Ops, 1>(a, row, p, p_end, pass);
          break;
        default:
          break;
      }
      k = k_end;
    } while (k < in);
  }
}

}  // namespace
}  // namespace triad::kernels::internal

// Defines one ISA's two entry points from kernels_internal.h (fp32 and bf16 weights) over its
// Ops policy; expand inside namespace triad::kernels::internal.
#define TRIAD_DEFINE_LINEAR_RANGE(name, ops)                                        \
  void name(const LinearArgs<float>& args, int64_t out_begin, int64_t out_end) {    \
    LinearRange<ops>(args, out_begin, out_end);                                     \
  }                                                                                 \
  void name(const LinearArgs<uint16_t>& args, int64_t out_begin, int64_t out_end) { \
    LinearRange<ops>(args, out_begin, out_end);                                     \
  }

#endif  // TRIAD_MODEL_KERNELS_LINEAR_TILE_INL_H_
