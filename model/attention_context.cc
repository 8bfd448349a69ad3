#include "model/attention_context.h"

#include <stdexcept>

namespace triad {

at::Tensor BatchAttention::SelfAttend(int64_t layer, const at::Tensor& q, const at::Tensor& k,
                                      const at::Tensor& v, double scale) {
  const auto [keys, values] = cache_.Append(layer, k, v);
  return Attention(q, keys, values, bias_, scale);
}

at::Tensor BatchAttention::CrossAttend(int64_t layer, const at::Tensor& q, double scale) {
  if (cross_keys_ == nullptr) throw std::logic_error("no encoder keys for cross-attention");
  return Attention(q, (*cross_keys_)[layer], (*cross_values_)[layer], cross_mask_, scale);
}

at::Tensor RaggedAttention::SelfAttend(int64_t layer, const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, double scale) {
  std::vector<at::Tensor> outputs;
  outputs.reserve(sequences_.size());
  int64_t offset = 0;
  for (const RaggedSequence& s : sequences_) {
    const int64_t past = s.cache->length();
    const auto [keys, values] = s.cache->Append(layer, k.narrow(2, offset, s.num_tokens),
                                                v.narrow(2, offset, s.num_tokens));
    outputs.push_back(Attention(q.narrow(2, offset, s.num_tokens), keys, values,
                                bias_(past, s.num_tokens), scale));
    offset += s.num_tokens;
  }
  return outputs.size() == 1 ? outputs[0] : at::cat(outputs, 2);
}

at::Tensor RaggedAttention::CrossAttend(int64_t layer, const at::Tensor& q, double scale) {
  std::vector<at::Tensor> outputs;
  outputs.reserve(sequences_.size());
  int64_t offset = 0;
  for (const RaggedSequence& s : sequences_) {
    if (s.cross_keys == nullptr) throw std::logic_error("no encoder keys for cross-attention");
    outputs.push_back(Attention(q.narrow(2, offset, s.num_tokens), (*s.cross_keys)[layer],
                                (*s.cross_values)[layer], at::Tensor(), scale));
    offset += s.num_tokens;
  }
  return outputs.size() == 1 ? outputs[0] : at::cat(outputs, 2);
}

}  // namespace triad
