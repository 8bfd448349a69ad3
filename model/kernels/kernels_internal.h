// Internals of triad_kernels shared by the per-ISA translation units and the tests: the
// argument bundle, the per-ISA range kernels and the ISA-forcing entry points. Not for use
// outside model/kernels and tests/kernels.
#ifndef TRIAD_MODEL_KERNELS_KERNELS_INTERNAL_H_
#define TRIAD_MODEL_KERNELS_KERNELS_INTERNAL_H_

#include <cstdint>
#include <string_view>

namespace triad::kernels::internal {

// One linear-layer call, as documented on LinearF32 in linear.h. W is float or uint16_t
// (bf16 bits); so is X (uint16_t: LinearBf16Bf16's bf16 activations).
template <typename W, typename X = float>
struct LinearArgs {
  const X* x = nullptr;         // [num_rows, in_features]
  int64_t num_rows = 0;         // activation rows; <= 0 means nothing to do
  const W* w = nullptr;         // [out_features, in_features]
  const float* bias = nullptr;  // [out_features]; null means no bias
  float* y = nullptr;           // [num_rows, out_features]
  int64_t in_features = 0;      // 0 gives y = bias (or 0)
  int64_t out_features = 0;     // <= 0 means nothing to do
};

// The rows-in-lanes tiles' (linear_avx512*.cc) store: y[row + r, out + o] = sums[o * 16 + r] +
// bias[out + o] for r < rows (<= 16) and o < O, sums holding one 16-lane vector per output.
template <int O, typename W, typename X>
inline void StoreLaneSums(const LinearArgs<W, X>& a, const float* sums, int64_t row,
                          int64_t rows, int64_t out) {
  for (int64_t r = 0; r < rows; ++r) {
    float* y = a.y + (row + r) * a.out_features + out;
    for (int o = 0; o < O; ++o) {
      y[o] = sums[o * 16 + r] + (a.bias != nullptr ? a.bias[out + o] : 0.0f);
    }
  }
}

// Output rows are handed to threads in blocks of this many (and the kernels' L2-sized panels
// of outputs are multiples of it).
inline constexpr int64_t kOutBlock = 4;

// Instruction sets with a kernel, best last. kAvx512 needs only AVX-512F (see
// linear_avx512.cc for why not AVX512_BF16's dot product); kAvx2 needs AVX2 and FMA.
enum class Isa { kScalar, kAvx2, kAvx512 };

std::string_view IsaName(Isa isa);
// Whether this CPU and OS can run `isa` (CPUID plus the OS-enabled register state).
bool CpuSupports(Isa isa);
// The best ISA CpuSupports; computed once.
Isa BestIsa();

// Computes outputs [out_begin, out_end) of every row, single-threaded. Must only be called
// where CpuSupports(the ISA in the name).
void LinearRangeScalar(const LinearArgs<float>& args, int64_t out_begin, int64_t out_end);
void LinearRangeScalar(const LinearArgs<uint16_t>& args, int64_t out_begin, int64_t out_end);
void LinearRangeAvx2(const LinearArgs<float>& args, int64_t out_begin, int64_t out_end);
void LinearRangeAvx2(const LinearArgs<uint16_t>& args, int64_t out_begin, int64_t out_end);
void LinearRangeAvx512(const LinearArgs<float>& args, int64_t out_begin, int64_t out_end);
void LinearRangeAvx512(const LinearArgs<uint16_t>& args, int64_t out_begin, int64_t out_end);

// Whether the CPU has AVX512_BF16's dot product of bf16 pairs (and AVX-512F), which
// LinearBf16Bf16 uses at kBf16PairMinRows to kBf16PairMaxRows rows.
bool CpuSupportsBf16Pairs();
inline constexpr int64_t kBf16PairMinRows = 12, kBf16PairMaxRows = 16;
// Outputs [out_begin, out_end) of every row, single-threaded, for kBf16PairMinRows <= rows
// <= kBf16PairMaxRows; only where CpuSupportsBf16Pairs().
void LinearRangeAvx512Bf16Pairs(const LinearArgs<uint16_t, uint16_t>& args, int64_t out_begin,
                                int64_t out_end);
// LinearBf16Bf16 on the intra-op threads; with `pairs` false the widening path (x to float,
// then LinearBf16) whatever the CPU, so tests cover both.
void LinearBf16Bf16WithPairs(bool pairs, const LinearArgs<uint16_t, uint16_t>& args);

// rows.h's loops with a given ISA (the CPU must support it); the public functions are these
// with BestIsa().
#define TRIAD_DECLARE_ROWS(suffix)                                                            \
  void DotRows##suffix(const float* q, const float* rows, int64_t n, int64_t dim, float* out); \
  void DotRows##suffix(const float* q, const uint16_t* rows, int64_t n, int64_t dim,          \
                       float* out);                                                          \
  void AxpyRows##suffix(const float* p, const float* rows, int64_t n, int64_t dim, float* acc); \
  void AxpyRows##suffix(const float* p, const uint16_t* rows, int64_t n, int64_t dim,         \
                        float* acc);                                                          \
  void ScaledSoftmax##suffix(float* scores, int64_t n, float scale, const float* bias);
TRIAD_DECLARE_ROWS(Scalar)
TRIAD_DECLARE_ROWS(Avx2)
TRIAD_DECLARE_ROWS(Avx512)
#undef TRIAD_DECLARE_ROWS
void DotRowsWithIsa(Isa isa, const float* q, const float* rows, int64_t n, int64_t dim,
                    float* out);
void DotRowsWithIsa(Isa isa, const float* q, const uint16_t* rows, int64_t n, int64_t dim,
                    float* out);
void AxpyRowsWithIsa(Isa isa, const float* p, const float* rows, int64_t n, int64_t dim,
                     float* acc);
void AxpyRowsWithIsa(Isa isa, const float* p, const uint16_t* rows, int64_t n, int64_t dim,
                     float* acc);
void ScaledSoftmaxWithIsa(Isa isa, float* scores, int64_t n, float scale, const float* bias);

// The whole call on the intra-op threads with the given ISA's kernel, which the CPU must
// support; LinearF32 / LinearBf16 are these with BestIsa(). Tests use them to cover every
// path the CPU can run.
void LinearWithIsa(Isa isa, const LinearArgs<float>& args);
void LinearWithIsa(Isa isa, const LinearArgs<uint16_t>& args);

}  // namespace triad::kernels::internal

#endif  // TRIAD_MODEL_KERNELS_KERNELS_INTERNAL_H_
