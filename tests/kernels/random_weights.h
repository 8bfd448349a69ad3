// Random kernel inputs shared by the kernel tests: floats uniform in [-1, 1), and weights of
// either storage type (float32, or the same values rounded to bf16 bits).
#ifndef TRIAD_TESTS_KERNELS_RANDOM_WEIGHTS_H_
#define TRIAD_TESTS_KERNELS_RANDOM_WEIGHTS_H_

#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "model/kernels/bf16.h"

namespace triad::kernels::test_inputs {

inline std::vector<float> RandomFloats(int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = dist(rng);
  return values;
}

template <typename W>
std::vector<W> RandomWeights(int64_t count, std::mt19937& rng) {
  const std::vector<float> values = RandomFloats(count, rng);
  if constexpr (std::is_same_v<W, float>) {
    return values;
  } else {
    std::vector<uint16_t> bits(static_cast<size_t>(count));
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = FloatToBf16(values[i]);
    return bits;
  }
}

}  // namespace triad::kernels::test_inputs

#endif  // TRIAD_TESTS_KERNELS_RANDOM_WEIGHTS_H_
