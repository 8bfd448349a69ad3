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
  int64_t offset = 0;
  for (const RaggedSequence& s : sequences_) {
    s.kv->Write(layer, k[0].narrow(1, offset, s.num_tokens), v[0].narrow(1, offset, s.num_tokens));
    offset += s.num_tokens;
  }
  return Attend(layer, q, scale, /*cross=*/false);
}

at::Tensor RaggedAttention::CrossAttend(int64_t layer, const at::Tensor& q, double scale) {
  for (const RaggedSequence& s : sequences_) {
    if (s.cross == nullptr) throw std::logic_error("no encoder keys for cross-attention");
  }
  return Attend(layer, q, scale, /*cross=*/true);
}

at::Tensor RaggedAttention::Attend(int64_t layer, const at::Tensor& q, double scale,
                                   bool cross) const {
  const int64_t num_heads = q.size(1);
  const bool kernel = q.device().is_cpu() && UseCpuKernels();
  std::vector<at::Tensor> outputs(sequences_.size());
  std::vector<PagedQuery> decode;
  std::vector<int64_t> decode_rows;
  std::vector<size_t> decode_index;
  int64_t offset = 0;
  for (size_t i = 0; i < sequences_.size(); ++i) {
    const RaggedSequence& s = sequences_[i];
    const PagedKv& kv = cross ? *s.cross : *s.kv;
    // Self-attention: the cache's length is still the one before this step's tokens.
    const int64_t past = cross ? 0 : kv.length();
    const int64_t keys = cross ? kv.length() : past + s.num_tokens;
    const at::Tensor bias = cross ? at::Tensor() : bias_(past, s.num_tokens);
    if (kernel && s.num_tokens == 1) {
      PagedQuery query{&kv, keys, at::Tensor()};
      if (bias.defined()) {
        query.bias = bias.to(at::kFloat).expand({1, num_heads, 1, keys}).reshape({num_heads, keys})
                         .contiguous();
      }
      decode.push_back(std::move(query));
      decode_rows.push_back(offset);
      decode_index.push_back(i);
    } else {
      const auto [k, v] = kv.Gather(layer, keys);
      outputs[i] = Attention(q.narrow(2, offset, s.num_tokens), k, v, bias, scale);
    }
    offset += s.num_tokens;
  }
  if (!decode.empty()) {
    const at::Tensor rows = at::tensor(decode_rows, at::kLong);
    const at::Tensor out =
        PagedDecodeAttention(q[0].index_select(1, rows).transpose(0, 1), decode, layer, scale);
    for (size_t j = 0; j < decode.size(); ++j) {
      outputs[decode_index[j]] = out[static_cast<int64_t>(j)].view({1, num_heads, 1, -1});
    }
  }
  return outputs.size() == 1 ? outputs[0] : at::cat(outputs, 2);
}

}  // namespace triad
