// Public API of triad_kernels: small-batch linear layers y = x W^T + b on the CPU.
//
// At decode time (1..16 activation rows) a linear layer is bound by streaming W from memory,
// and ATen's batch-1 paths (OpenBLAS GEMM for fp32, oneDNN for bf16) reach well under the
// machine's read bandwidth. These kernels read every weight once per call (activation rows
// are tiled so one weight load serves several rows), accumulate in fp32, and split the output
// rows across the intra-op threads of at::parallel_for, so `at::set_num_threads` governs them.
//
// Thread contract: stateless; any number of callers may run them concurrently. Called from
// inside an at::parallel_for region they run on the calling thread only.
#ifndef TRIAD_MODEL_KERNELS_LINEAR_H_
#define TRIAD_MODEL_KERNELS_LINEAR_H_

#include <cstdint>
#include <string_view>

namespace triad::kernels {

// y[m, o] = sum_i x[m, i] * w[o, i] + (bias ? bias[o] : 0) for m < num_rows and
// o < out_features. Layouts are dense row-major: x is [num_rows, in_features], w is
// [out_features, in_features] (as nn.Linear stores it), bias is [out_features] or null, and
// y is [num_rows, out_features]; y must not alias x, w or bias. Any sizes are accepted
// (in_features == 0 gives y = bias); num_rows <= 0 or out_features <= 0 does nothing.
// Weights are streamed once per call for any num_rows; past ~4 rows the AVX2 path becomes
// compute-bound rather than bandwidth-bound.
void LinearF32(const float* x, int64_t num_rows, const float* w, const float* bias, float* y,
               int64_t in_features, int64_t out_features);

// As LinearF32, with w given as bfloat16 bits (see bf16.h). Products and sums are fp32; x is
// not rounded to bf16, so the only rounding beyond fp32 arithmetic is the one already in w.
void LinearBf16(const float* x, int64_t num_rows, const uint16_t* w_bf16, const float* bias,
                float* y, int64_t in_features, int64_t out_features);

// As LinearBf16, with x given as bf16 bits too: the activations of a bfloat16 model, which
// are bf16 already. Products of two bf16 values are exact in fp32 and the sums are fp32, so the
// result equals LinearBf16 on the widened x up to the order of the sums (and denormal inputs,
// which AVX512_BF16 flushes to zero). With AVX512_BF16 and 12 to 16 rows (a busy decode step)
// one instruction multiplies and adds two in-features for all 16 rows (the rows in the lanes,
// as LinearF32's tiles there), twice the work per instruction of widening; otherwise x is
// widened and LinearBf16 runs.
void LinearBf16Bf16(const uint16_t* x_bf16, int64_t num_rows, const uint16_t* w_bf16,
                    const float* bias, float* y, int64_t in_features, int64_t out_features);

// Activation rows up to which LinearF32 outruns a BLAS GEMM on this CPU, so callers should
// prefer it (INT64_MAX: at any row count). With AVX-512 its tiles keep ahead of the GEMM at
// every row count: on two Zen 5 cores (FMA peak ~440 GFLOP/s) the 4x4 tiles of 16 lanes ran
// ~350 GFLOP/s at 64 to 1024 rows with the weights in cache and ~250-300 streaming them from
// memory, against ~150-200 for Debian's OpenBLAS 0.3.21 (which takes Zen 5 for Haswell;
// ~215-345 with its AVX-512 kernels forced), and fp32 weights at 12-16 and 25+ rows now take
// rows-in-lanes tiles that are faster still (linear_avx512.cc). With AVX2 only its 4x2 tiles fall behind OpenBLAS past a few rows
// (Zen 3: ~60 against ~120 GFLOP/s at 16 rows), and it pays only while the weights'
// streaming bounds the product: 16.
int64_t LinearF32PreferredMaxRows();

// The instruction set LinearBf16 and LinearF32 dispatch to on this CPU: "avx512f", "avx2" or
// "scalar". Fixed for the process; for logs and benchmark reports.
std::string_view KernelIsa();

}  // namespace triad::kernels

#endif  // TRIAD_MODEL_KERNELS_LINEAR_H_
