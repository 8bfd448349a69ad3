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

// Runs one in-features step of kLanes elements for every (row, out) pair of the tile.
template <class Ops, int R, int O, typename W>
TRIAD_KERNEL_TARGET inline void TileStep(const float* const* x, const W* const* w, int64_t i,
                                         typename Ops::Vec (&acc)[R][O]) {
  typename Ops::Vec xv[R];
  for (int r = 0; r < R; ++r) xv[r] = Ops::LoadX(x[r] + i);
  for (int o = 0; o < O; ++o) {
    const typename Ops::Vec wv = Ops::LoadW(w[o] + i);
    for (int r = 0; r < R; ++r) acc[r][o] = Ops::MulAdd(xv[r], wv, acc[r][o]);
  }
}

// y[row + r, out + o] for r < R, o < O: a full pass over in_features with R*O*K vector
// accumulators, the in_features remainder (< kLanes) done on zero-padded copies so the tail
// takes the same arithmetic as the body. No software prefetch: on Zen 3, prefetching 256 B to
// 2 KiB ahead in each weight row measured no better than the hardware prefetcher (within
// run-to-run noise), and with R = 1 this loop runs at ~40 GB/s of bf16 from L2 on one core,
// so the memory stream, not the arithmetic, sets the pace.
template <class Ops, int R, int O, typename W>
TRIAD_KERNEL_TARGET void Tile(const LinearArgs<W>& a, int64_t row, int64_t out) {
  using Vec = typename Ops::Vec;
  constexpr int kLanes = Ops::kLanes;
  constexpr int K = Unroll(R, O);
  const int64_t in = a.in_features;
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
  int64_t i = 0;
  for (; i + K * kLanes <= in; i += K * kLanes) {
    for (int k = 0; k < K; ++k) TileStep<Ops, R, O>(x, w, i + k * kLanes, acc[k]);
  }
  for (; i + kLanes <= in; i += kLanes) TileStep<Ops, R, O>(x, w, i, acc[0]);
  if (i < in) {
    float x_tail[R][kLanes] = {};
    W w_tail[O][kLanes] = {};
    const float* x_tail_rows[R];
    const W* w_tail_rows[O];
    for (int r = 0; r < R; ++r) {
      for (int64_t j = i; j < in; ++j) x_tail[r][j - i] = x[r][j];
      x_tail_rows[r] = x_tail[r];
    }
    for (int o = 0; o < O; ++o) {
      for (int64_t j = i; j < in; ++j) w_tail[o][j - i] = w[o][j];
      w_tail_rows[o] = w_tail[o];
    }
    TileStep<Ops, R, O>(x_tail_rows, w_tail_rows, 0, acc[0]);
  }

  for (int r = 0; r < R; ++r) {
    for (int o = 0; o < O; ++o) {
      Vec sum = acc[0][r][o];
      for (int k = 1; k < K; ++k) sum = Ops::Add(sum, acc[k][r][o]);
      const float bias = a.bias != nullptr ? a.bias[out + o] : 0.0f;
      a.y[(row + r) * a.out_features + out + o] = Ops::ReduceAdd(sum) + bias;
    }
  }
}

// Rows [row, row + R) against outputs [out_begin, out_end), Ops::OutTile(R) outputs at a time.
template <class Ops, int R, typename W>
TRIAD_KERNEL_TARGET void RowTile(const LinearArgs<W>& a, int64_t row, int64_t out_begin,
                                 int64_t out_end) {
  constexpr int O = Ops::OutTile(R);
  int64_t out = out_begin;
  for (; out + O <= out_end; out += O) Tile<Ops, R, O>(a, row, out);
  for (; out < out_end; ++out) Tile<Ops, R, 1>(a, row, out);
}

// Outputs [out_begin, out_end) of every row. Blocks of kOutBlock outputs are the outer loop so
// that a block's weights come from memory for the first row tile and from cache for the rest.
template <class Ops, typename W>
TRIAD_KERNEL_TARGET void LinearRange(const LinearArgs<W>& a, int64_t out_begin, int64_t out_end) {
  for (int64_t block = out_begin; block < out_end; block += kOutBlock) {
    const int64_t block_end = MinIndex(block + kOutBlock, out_end);
    int64_t row = 0;
    for (; row + kRowTile <= a.num_rows; row += kRowTile) {
      RowTile<Ops, kRowTile>(a, row, block, block_end);
    }
    switch (a.num_rows - row) {
      case 3:
        RowTile<Ops, 3>(a, row, block, block_end);
        break;
      case 2:
        RowTile<Ops, 2>(a, row, block, block_end);
        break;
      case 1:
        RowTile<Ops, 1>(a, row, block, block_end);
        break;
      default:
        break;
    }
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
