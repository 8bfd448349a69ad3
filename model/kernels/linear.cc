// Dispatch and threading for the linear kernels (picks the best ISA once, then splits output
// rows across the intra-op threads), and dispatch for the row kernels of rows.h.
#include "model/kernels/linear.h"

#include <ATen/Parallel.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "model/kernels/bf16.h"
#include "model/kernels/kernels_internal.h"
#include "model/kernels/rows.h"

namespace triad::kernels {
namespace internal {
namespace {

// Least work worth a thread, in bytes of weights (or its compute equivalent, below). A
// parallel region costs a few microseconds when the pool is spinning; 128 KiB streams in
// ~5 us on one core, so smaller layers stay on the calling thread.
constexpr int64_t kMinBytesPerTask = 128 * 1024;

template <typename W>
using LinearRangeFn = void (*)(const LinearArgs<W>&, int64_t, int64_t);

template <typename W>
LinearRangeFn<W> RangeKernel(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  switch (isa) {
    case Isa::kAvx512:
      return static_cast<LinearRangeFn<W>>(&LinearRangeAvx512);
    case Isa::kAvx2:
      return static_cast<LinearRangeFn<W>>(&LinearRangeAvx2);
    case Isa::kScalar:
      break;
  }
#endif
  return static_cast<LinearRangeFn<W>>(&LinearRangeScalar);
}

// `kernel` over the output rows of `args`, split across the intra-op threads.
template <typename W, typename X>
void RunParallel(const LinearArgs<W, X>& args,
                 void (*kernel)(const LinearArgs<W, X>&, int64_t, int64_t)) {
  if (args.num_rows <= 0 || args.out_features <= 0) return;
  const int64_t num_blocks = (args.out_features + kOutBlock - 1) / kOutBlock;
  // Past a few rows the tiles are compute-bound (one FMA per weight per row), so cost grows
  // with num_rows once it exceeds the bytes per weight.
  const int64_t cost_per_weight = std::max<int64_t>(sizeof(W), args.num_rows);
  const int64_t block_cost = std::max<int64_t>(1, kOutBlock * args.in_features * cost_per_weight);
  const int64_t grain = std::max<int64_t>(1, kMinBytesPerTask / block_cost);
  auto run = [&](int64_t block_begin, int64_t block_end) {
    kernel(args, block_begin * kOutBlock, std::min(block_end * kOutBlock, args.out_features));
  };
#if defined(_OPENMP)
  // Our own parallel region rather than at::parallel_for: on Debian's LibTorch 1.13 the same
  // kernel streamed ~10 GB/s through at::parallel_for and ~17 GB/s through a plain OpenMP
  // region (same machine, same run, read probe ~18 GB/s). The thread count still follows
  // at::set_num_threads.
  const int64_t max_tasks = std::max<int64_t>(1, num_blocks / grain);
  const int threads = static_cast<int>(std::min<int64_t>(at::get_num_threads(), max_tasks));
  if (threads <= 1 || omp_in_parallel()) {
    run(0, num_blocks);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t n = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (num_blocks + n - 1) / n;
    const int64_t begin = t * chunk, end = std::min(num_blocks, begin + chunk);
    if (begin < end) run(begin, end);
  }
#else
  at::parallel_for(0, num_blocks, grain, run);
#endif
}

}  // namespace

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512f";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kScalar:
      break;
  }
  return "scalar";
}

// __builtin_cpu_supports also checks XCR0, so an OS that does not save ymm/zmm state (or a
// VM that masks it) reads as unsupported rather than faulting later.
bool CpuSupports(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma");
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kScalar:
      return true;
  }
  return false;
#else
  return isa == Isa::kScalar;
#endif
}

Isa BestIsa() {
  static const Isa best = [] {
    for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
      if (CpuSupports(isa)) return isa;
    }
    return Isa::kScalar;
  }();
  return best;
}

// One switch for the four row kernels: W picks the overload of each ISA's function.
#if defined(__x86_64__) || defined(__i386__)
#define TRIAD_ROWS_DISPATCH(fn, ...)   \
  switch (isa) {                       \
    case Isa::kAvx512:                 \
      return fn##Avx512(__VA_ARGS__);  \
    case Isa::kAvx2:                   \
      return fn##Avx2(__VA_ARGS__);    \
    case Isa::kScalar:                 \
      break;                           \
  }                                    \
  return fn##Scalar(__VA_ARGS__)
#else
#define TRIAD_ROWS_DISPATCH(fn, ...) return fn##Scalar(__VA_ARGS__)
#endif

void DotRowsWithIsa(Isa isa, const float* q, const float* rows, int64_t n, int64_t dim,
                    float* out) {
  TRIAD_ROWS_DISPATCH(DotRows, q, rows, n, dim, out);
}
void DotRowsWithIsa(Isa isa, const float* q, const uint16_t* rows, int64_t n, int64_t dim,
                    float* out) {
  TRIAD_ROWS_DISPATCH(DotRows, q, rows, n, dim, out);
}
void AxpyRowsWithIsa(Isa isa, const float* p, const float* rows, int64_t n, int64_t dim,
                     float* acc) {
  TRIAD_ROWS_DISPATCH(AxpyRows, p, rows, n, dim, acc);
}
void AxpyRowsWithIsa(Isa isa, const float* p, const uint16_t* rows, int64_t n, int64_t dim,
                     float* acc) {
  TRIAD_ROWS_DISPATCH(AxpyRows, p, rows, n, dim, acc);
}
void ScaledSoftmaxWithIsa(Isa isa, float* scores, int64_t n, float scale, const float* bias) {
  TRIAD_ROWS_DISPATCH(ScaledSoftmax, scores, n, scale, bias);
}
#undef TRIAD_ROWS_DISPATCH

void LinearWithIsa(Isa isa, const LinearArgs<float>& args) {
  RunParallel(args, RangeKernel<float>(isa));
}
void LinearWithIsa(Isa isa, const LinearArgs<uint16_t>& args) {
  RunParallel(args, RangeKernel<uint16_t>(isa));
}

bool CpuSupportsBf16Pairs() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    __builtin_cpu_init();
    return CpuSupports(Isa::kAvx512) && __builtin_cpu_supports("avx512bf16");
  }();
  return has;
#else
  return false;
#endif
}

void LinearBf16Bf16WithPairs(bool pairs, const LinearArgs<uint16_t, uint16_t>& args) {
  if (args.num_rows <= 0 || args.out_features <= 0) return;
#if defined(__x86_64__) || defined(__i386__)
  if (pairs && args.num_rows >= kBf16PairMinRows && args.num_rows <= kBf16PairMaxRows) {
    RunParallel(args, &LinearRangeAvx512Bf16Pairs);
    return;
  }
#endif
  std::vector<float> x(static_cast<size_t>(args.num_rows * args.in_features));
  for (size_t i = 0; i < x.size(); ++i) x[i] = Bf16ToFloat(args.x[i]);
  LinearWithIsa(BestIsa(), LinearArgs<uint16_t>{x.data(), args.num_rows, args.w, args.bias,
                                                args.y, args.in_features, args.out_features});
}

}  // namespace internal

void LinearF32(const float* x, int64_t num_rows, const float* w, const float* bias, float* y,
               int64_t in_features, int64_t out_features) {
  internal::LinearWithIsa(
      internal::BestIsa(),
      internal::LinearArgs<float>{x, num_rows, w, bias, y, in_features, out_features});
}

void LinearBf16(const float* x, int64_t num_rows, const uint16_t* w_bf16, const float* bias,
                float* y, int64_t in_features, int64_t out_features) {
  internal::LinearWithIsa(
      internal::BestIsa(),
      internal::LinearArgs<uint16_t>{x, num_rows, w_bf16, bias, y, in_features, out_features});
}

void LinearBf16Bf16(const uint16_t* x_bf16, int64_t num_rows, const uint16_t* w_bf16,
                    const float* bias, float* y, int64_t in_features, int64_t out_features) {
  internal::LinearBf16Bf16WithPairs(
      internal::CpuSupportsBf16Pairs(),
      internal::LinearArgs<uint16_t, uint16_t>{x_bf16, num_rows, w_bf16, bias, y, in_features,
                                               out_features});
}

int64_t LinearF32PreferredMaxRows() {
  return internal::BestIsa() == internal::Isa::kAvx512 ? std::numeric_limits<int64_t>::max() : 16;
}

void DotRowsF32(const float* q, const float* rows, int64_t n, int64_t dim, float* out) {
  internal::DotRowsWithIsa(internal::BestIsa(), q, rows, n, dim, out);
}
void DotRowsBf16(const float* q, const uint16_t* rows, int64_t n, int64_t dim, float* out) {
  internal::DotRowsWithIsa(internal::BestIsa(), q, rows, n, dim, out);
}
void AxpyRowsF32(const float* p, const float* rows, int64_t n, int64_t dim, float* acc) {
  internal::AxpyRowsWithIsa(internal::BestIsa(), p, rows, n, dim, acc);
}
void AxpyRowsBf16(const float* p, const uint16_t* rows, int64_t n, int64_t dim, float* acc) {
  internal::AxpyRowsWithIsa(internal::BestIsa(), p, rows, n, dim, acc);
}

void ScaledSoftmaxF32(float* scores, int64_t n, float scale, const float* bias) {
  internal::ScaledSoftmaxWithIsa(internal::BestIsa(), scores, n, scale, bias);
}

std::string_view KernelIsa() { return internal::IsaName(internal::BestIsa()); }

}  // namespace triad::kernels
