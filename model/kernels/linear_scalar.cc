// LinearRange kernels in portable C++: the fallback for CPUs without AVX2 + FMA (and for
// non-x86 builds), and an independent check on the vector paths in tests.
#include <cstdint>

#include "model/kernels/bf16.h"
#include "model/kernels/kernels_internal.h"

#define TRIAD_KERNEL_TARGET
#include "model/kernels/linear_tile_inl.h"
#include "model/kernels/rows_inl.h"

namespace triad::kernels::internal {
namespace {

struct ScalarOps {
  using Vec = float;
  static constexpr int kLanes = 1;
  static constexpr bool kPrefetchPastOneRowTile = true;
  static constexpr int OutTile(int rows) { return rows <= 2 ? 4 : 2; }

  static Vec Zero() { return 0.0f; }
  static Vec LoadX(const float* p) { return *p; }
  static Vec LoadW(const float* p) { return *p; }
  static Vec LoadW(const uint16_t* p) { return Bf16ToFloat(*p); }
  static Vec MulAdd(Vec a, Vec b, Vec acc) { return a * b + acc; }
  static Vec Add(Vec a, Vec b) { return a + b; }
  static Vec Broadcast(float x) { return x; }
  static void Store(float* p, Vec v) { *p = v; }
  static float ReduceAdd(Vec v) { return v; }
};

}  // namespace

TRIAD_DEFINE_LINEAR_RANGE(LinearRangeScalar, ScalarOps)
TRIAD_DEFINE_ROWS(Scalar, ScalarOps)

}  // namespace triad::kernels::internal
