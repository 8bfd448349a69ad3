// bfloat16 <-> float conversion for weights stored as raw uint16_t bits (the upper half of an
// IEEE fp32). Header-only and LibTorch-free so weight loaders and tests share one rounding rule.
#ifndef TRIAD_MODEL_KERNELS_BF16_H_
#define TRIAD_MODEL_KERNELS_BF16_H_

#include <cstdint>
#include <cstring>

namespace triad::kernels {

// Widening is exact: bf16 is fp32 with the low 16 mantissa bits dropped.
inline float Bf16ToFloat(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof(value));
  return value;
}

// A weight as float32, whether stored as float32 or as bf16 bits: for code templated on the
// storage type.
inline float Widen(float w) { return w; }
inline float Widen(uint16_t bits) { return Bf16ToFloat(bits); }

// Round-to-nearest-even, as PyTorch's `tensor.to(torch.bfloat16)` does, so weights converted
// here match checkpoints converted there bit for bit. NaNs stay NaN (quiet), never become Inf.
inline uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

}  // namespace triad::kernels

#endif  // TRIAD_MODEL_KERNELS_BF16_H_
