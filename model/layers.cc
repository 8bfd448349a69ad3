#include "model/layers.h"

#include <atomic>
#include <cmath>
#include <limits>

#include "model/huge_pages.h"
#include "model/kernels/linear.h"

namespace triad {
namespace {

std::atomic<bool> g_use_cpu_kernels{true};

// Up to this many activation rows a linear layer is bound by streaming its weights, where the
// triad_kernels matrix-vector kernels reach the memory bandwidth and ATen's GEMMs do not.
// Beyond it float32 weights still take the kernel where it outruns the BLAS GEMM
// (kernels::LinearF32PreferredMaxRows: with AVX-512); bfloat16 ones go to ATen, whose
// oneDNN GEMM with AVX512_BF16 runs ~2x the kernel from 64 rows (~790 against ~375 GFLOP/s
// on two Zen 5 cores), or to the widened fp32 GEMM below.
constexpr int64_t kMaxKernelRows = 16;

bool KernelApplies(const at::Tensor& x, const at::Tensor& weight) {
  if (!g_use_cpu_kernels || !weight.device().is_cpu() || !weight.is_contiguous()) return false;
  const at::ScalarType t = weight.scalar_type();
  if (t != at::kFloat && t != at::kBFloat16) return false;
  const int64_t rows = x.numel() / weight.size(1);
  if (rows <= 0) return false;
  return rows <= kMaxKernelRows || (t == at::kFloat && rows <= kernels::LinearF32PreferredMaxRows());
}

at::Tensor KernelLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const int64_t in = weight.size(1), out = weight.size(0), rows = x.numel() / in;
  const at::Tensor b32 = bias.defined() ? bias.to(at::kFloat).contiguous() : at::Tensor();
  at::Tensor y = at::empty({rows, out}, x.options().dtype(at::kFloat));
  const float* b = b32.defined() ? b32.data_ptr<float>() : nullptr;
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = out;
  if (weight.scalar_type() == at::kBFloat16 && x.scalar_type() == at::kBFloat16) {
    // A bfloat16 model's activations are bf16 already: the kernel takes them as they are.
    const at::Tensor x16 = x.reshape({rows, in}).contiguous();
    kernels::LinearBf16Bf16(reinterpret_cast<const uint16_t*>(x16.data_ptr<at::BFloat16>()), rows,
                            reinterpret_cast<const uint16_t*>(weight.data_ptr<at::BFloat16>()), b,
                            y.data_ptr<float>(), in, out);
    return y.view(sizes).to(at::kBFloat16);
  }
  const at::Tensor x32 = x.reshape({rows, in}).to(at::kFloat).contiguous();
  if (weight.scalar_type() == at::kFloat) {
    kernels::LinearF32(x32.data_ptr<float>(), rows, weight.data_ptr<float>(), b,
                       y.data_ptr<float>(), in, out);
  } else {
    kernels::LinearBf16(x32.data_ptr<float>(), rows,
                        reinterpret_cast<const uint16_t*>(weight.data_ptr<at::BFloat16>()), b,
                        y.data_ptr<float>(), in, out);
  }
  return y.view(sizes).to(weight.scalar_type());
}

// Without AVX-512 BF16, oneDNN's bf16 GEMM falls back to a path ~15x slower than fp32 GEMM
// (measured: 7 vs 120 prefill tokens/s), so large bf16 products on such CPUs widen the weight
// to fp32 per call. The widening reads each weight once per call, which a GEMM with
// many rows amortises.
bool CpuHasNativeBf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

at::Tensor WidenedBf16Linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return at::linear(x.to(at::kFloat), weight.to(at::kFloat),
                    bias.defined() ? bias.to(at::kFloat) : at::Tensor())
      .to(weight.scalar_type());
}

}  // namespace

void SetUseCpuKernels(bool enabled) { g_use_cpu_kernels = enabled; }
bool UseCpuKernels() { return g_use_cpu_kernels; }

at::Tensor Linear::operator()(const at::Tensor& x) const {
  if (KernelApplies(x, weight)) return KernelLinear(x, weight, bias);
  if (weight.scalar_type() == at::kBFloat16 && weight.device().is_cpu() && !CpuHasNativeBf16()) {
    return WidenedBf16Linear(x, weight, bias);
  }
  return at::linear(x, weight, bias);
}

Linear ConcatLinears(const std::vector<Linear>& parts) {
  std::vector<at::Tensor> weights, biases;
  for (const Linear& l : parts) {
    weights.push_back(l.weight);
    if (l.bias.defined()) biases.push_back(l.bias);
  }
  Linear fused;
  int64_t rows = 0;
  for (const at::Tensor& w : weights) rows += w.size(0);
  fused.weight = EmptyHugePaged({rows, weights[0].size(1)}, weights[0].options());  // huge_pages.h
  at::cat_out(fused.weight, weights, 0);
  if (biases.size() == parts.size()) fused.bias = at::cat(biases, 0);
  return fused;
}

at::Tensor LayerNorm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     double eps) {
  return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

at::Tensor ToType(const at::Tensor& x, at::ScalarType type) {
  return x.scalar_type() == type ? x : x.to(type);
}

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor x32 = ToType(x, at::kFloat);
  const at::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  return weight * ToType(x32 * at::rsqrt(variance + eps), weight.scalar_type());
}

at::Tensor Activation(const std::string& name, const at::Tensor& x) {
  if (name == "relu") return at::relu(x);
  if (name == "silu") return at::silu(x);
  if (name == "gelu") return at::gelu(x);
  // gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  return at::gelu(x, "tanh");
}

double MaskValue(at::ScalarType dtype) {
  switch (dtype) {
    case at::kHalf: return -65504.0;
    case at::kBFloat16: return -3.3895313892515355e38;
    case at::kDouble: return std::numeric_limits<double>::lowest();
    default: return std::numeric_limits<float>::lowest();
  }
}

// Batched matmul a @ b. CPU bf16 bmm without native bf16 is a scalar path (~9x slower than
// fp32 at 512 tokens: 905 vs 103 ms per Llama-1.1B layer), so such products are computed in
// fp32 and rounded to bf16 once, which is where a bf16 matmul rounds too (fp32 accumulation).
at::Tensor MatMul(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() == at::kBFloat16 && a.device().is_cpu() && !CpuHasNativeBf16()) {
    return at::matmul(a.to(at::kFloat), b.to(at::kFloat)).to(at::kBFloat16);
  }
  return at::matmul(a, b);
}

at::Tensor Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& bias, double scale) {
  const int64_t batch = q.size(0), num_heads = q.size(1), num_queries = q.size(2);
  const int64_t num_kv_heads = k.size(1), num_keys = k.size(2), head_dim = q.size(3);
  const int64_t group = num_heads / num_kv_heads;
  // Grouped-query attention without copying K/V: the `group` query heads that share one KV
  // head are stacked along the query axis.
  const at::Tensor qg = q.reshape({batch, num_kv_heads, group * num_queries, head_dim});
  at::Tensor scores =
      MatMul(qg, k.transpose(-1, -2)).view({batch, num_heads, num_queries, num_keys});
  if (scale != 1.0) scores = scores * scale;
  if (bias.defined()) scores = scores + bias;
  const at::Tensor probs = ToType(at::softmax(scores, -1, at::kFloat), q.scalar_type());
  return MatMul(probs.view({batch, num_kv_heads, group * num_queries, num_keys}), v)
      .view({batch, num_heads, num_queries, v.size(3)});
}

at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

namespace {

// One head's rotary embedding from contiguous halves lo and hi of x (the three roundings of
// x * cos + rotate_half(x) * sin).
void RotaryHalves(const float* lo, const float* hi, const float* cos, const float* sin,
                  float* out, int64_t half) {
  for (int64_t d = 0; d < half; ++d) out[d] = lo[d] * cos[d] + -hi[d] * sin[d];
  for (int64_t d = 0; d < half; ++d) out[half + d] = hi[d] * cos[half + d] + lo[d] * sin[half + d];
}

}  // namespace

at::Tensor ApplyRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const bool fused = x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 &&
                     cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat &&
                     cos.dim() == 4 && cos.sizes() == sin.sizes() && cos.size(1) == 1 &&
                     cos.size(2) == x.size(2) && cos.size(3) == x.size(3) &&
                     (cos.size(0) == 1 || cos.size(0) == x.size(0)) && x.size(3) % 2 == 0;
  if (!fused) return x * cos + RotateHalf(x) * sin;
  const int64_t batch = x.size(0), heads = x.size(1), steps = x.size(2), dim = x.size(3);
  const int64_t half = dim / 2;
  const at::Tensor c = cos.expand({batch, 1, steps, dim}).contiguous();
  const at::Tensor s = sin.expand({batch, 1, steps, dim}).contiguous();
  at::Tensor out = at::empty({batch, steps, heads, dim}, x.options());
  const float* xp = x.data_ptr<float>();
  const int64_t sb = x.stride(0), sh = x.stride(1), st = x.stride(2), sd = x.stride(3);
  float* op = out.data_ptr<float>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < steps; ++t) {
      const float* cp = c.data_ptr<float>() + (b * steps + t) * dim;
      const float* spp = s.data_ptr<float>() + (b * steps + t) * dim;
      for (int64_t h = 0; h < heads; ++h) {
        const float* in = xp + b * sb + h * sh + t * st;
        float* o = op + ((b * steps + t) * heads + h) * dim;
        if (sd == 1) {  // the usual layout: loops the compiler vectorises
          RotaryHalves(in, in + half, cp, spp, o, half);
        } else {
          for (int64_t d = 0; d < half; ++d) {
            o[d] = in[d * sd] * cp[d] + -in[(d + half) * sd] * spp[d];
            o[d + half] = in[(d + half) * sd] * cp[d + half] + in[d * sd] * spp[d + half];
          }
        }
      }
    }
  }
  return out.transpose(1, 2);
}

at::Tensor SplitHeads(const at::Tensor& x, int64_t num_heads) {
  return x.view({x.size(0), x.size(1), num_heads, -1}).transpose(1, 2);
}

at::Tensor MergeHeads(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), -1});
}

at::Tensor BuildAttentionMask(const at::Tensor& key_mask, int64_t batch, int64_t past,
                              int64_t num_queries, bool causal, at::ScalarType dtype,
                              const at::Device& device) {
  const int64_t num_keys = key_mask.defined() ? key_mask.size(1) : past + num_queries;
  const bool needs_causal = causal && num_queries > 1;
  if (!needs_causal && !key_mask.defined()) return at::Tensor();
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor allowed = at::ones({batch, 1, num_queries, num_keys},
                                at::TensorOptions().dtype(at::kBool).device(device));
  if (needs_causal) {
    const at::Tensor key_pos = at::arange(num_keys, long_opts).view({1, num_keys});
    const at::Tensor query_pos = at::arange(past, past + num_queries, long_opts)
                                     .view({num_queries, 1});
    allowed = allowed & key_pos.le(query_pos).view({1, 1, num_queries, num_keys});
  }
  if (key_mask.defined()) {
    allowed = allowed & key_mask.to(device).ne(0).view({batch, 1, 1, num_keys});
  }
  return at::zeros(allowed.sizes(), at::TensorOptions().dtype(dtype).device(device))
      .masked_fill(allowed.logical_not(), MaskValue(dtype));
}

std::pair<at::Tensor, at::Tensor> KvCache::Append(int64_t layer, const at::Tensor& k,
                                                  const at::Tensor& v) {
  at::Tensor& keys = keys_[layer];
  at::Tensor& values = values_[layer];
  const int64_t needed = length_ + k.size(2);
  if (!keys.defined() || keys.size(2) < needed) {
    int64_t capacity = keys.defined() ? keys.size(2) : 0;
    capacity = capacity == 0 ? std::max<int64_t>(needed, 16)
                             : std::max<int64_t>(needed, 2 * capacity);
    auto grow = [&](const at::Tensor& old, const at::Tensor& like) {
      at::Tensor fresh = at::empty({like.size(0), like.size(1), capacity, like.size(3)},
                                   like.options());
      if (old.defined() && length_ > 0) {
        fresh.narrow(2, 0, length_).copy_(old.narrow(2, 0, length_));
      }
      return fresh;
    };
    keys = grow(keys, k);
    values = grow(values, v);
  }
  keys.narrow(2, length_, k.size(2)).copy_(k);
  values.narrow(2, length_, v.size(2)).copy_(v);
  return {keys.narrow(2, 0, needed), values.narrow(2, 0, needed)};
}

void KvCache::SelectRows(const at::Tensor& index) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (!keys_[i].defined()) continue;
    const at::Tensor idx = index.to(keys_[i].device());
    keys_[i] = keys_[i].index_select(0, idx);
    values_[i] = values_[i].index_select(0, idx);
  }
}

}  // namespace triad
