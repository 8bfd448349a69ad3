#include "model/attention_context.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace triad {
namespace {

// A host-built bool mask on `device`, sent in one copy (cloned on the CPU: `host` is a vector
// the caller frees).
at::Tensor UploadMask(std::vector<uint8_t>& host, at::IntArrayRef shape, const at::Device& device) {
  const at::Tensor t = at::from_blob(host.data(), shape, at::kBool);
  return device.is_cpu() ? t.clone() : t.to(device);
}

// `storage` [Hkv, blocks, block_size, D] gathered by `table` into [rows, Hkv, blocks *
// block_size, D], zero where `invalid` (stale contents of unused positions may be NaN).
at::Tensor GatherPadded(const at::Tensor& storage, const at::Tensor& table, int64_t rows,
                        int64_t blocks, const at::Tensor& invalid) {
  return storage.index_select(1, table)
      .view({storage.size(0), rows, blocks * storage.size(2), storage.size(3)})
      .transpose(0, 1)
      .masked_fill(invalid, 0);
}

}  // namespace

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
  if (!write_slots_.defined()) {
    // Every sequence's new positions, in token order: one indexed copy per layer writes them
    // all (per-sequence copies cost ~14 small ATen calls per sequence and layer).
    std::vector<int64_t> slots;
    slots.reserve(static_cast<size_t>(k.size(2)));
    for (const RaggedSequence& s : sequences_) s.kv->AppendSlots(s.num_tokens, slots);
    write_slots_ = at::tensor(slots, at::kLong).to(k.device());
  }
  sequences_[0].kv->pool().WriteSlots(layer, write_slots_, k[0], v[0]);
  return Attend(layer, q, scale, /*cross=*/false);
}

at::Tensor RaggedAttention::CrossAttend(int64_t layer, const at::Tensor& q, double scale) {
  for (const RaggedSequence& s : sequences_) {
    if (s.cross == nullptr) throw std::logic_error("no encoder keys for cross-attention");
  }
  return Attend(layer, q, scale, /*cross=*/true);
}

void RaggedAttention::BuildPlan(Plan& plan, bool cross, const at::Tensor& q) const {
  const int64_t num_heads = q.size(1);
  const at::Device device = q.device();
  const bool kernel = device.is_cpu() && UseCpuKernels();
  const size_t n = sequences_.size();
  plan.keys.resize(n);
  plan.index.resize(n);
  plan.bias.resize(n);
  plan.first_query.assign(n, -1);
  std::vector<int64_t> rows;
  std::vector<at::Tensor> decode_bias;  // padded path: per decode query, [1, 1 or H, 1, keys]
  std::vector<size_t> gathered;         // the sequences whose chunks gather their blocks
  std::vector<int64_t> offsets(n);      // each sequence's first row in the step
  int64_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    const RaggedSequence& s = sequences_[i];
    const PagedKv& kv = cross ? *s.cross : *s.kv;
    // Self-attention: the cache's length is still the one before this step's tokens.
    const int64_t past = cross ? 0 : kv.length();
    plan.keys[i] = cross ? kv.length() : past + s.num_tokens;
    offsets[i] = offset;
    if (!(s.num_tokens == 1 || (kernel && (causal_only_ || s.num_tokens <= kMaxKernelChunk)))) {
      gathered.push_back(i);
      offset += s.num_tokens;
      continue;
    }
    const at::Tensor bias = cross ? at::Tensor() : bias_(past, s.num_tokens);
    plan.first_query[i] = static_cast<int64_t>(rows.size());
    for (int64_t t = 0; t < s.num_tokens; ++t) {
      rows.push_back(offset + t);
      plan.decode_of.push_back(i);
      if (!kernel) {
        decode_bias.push_back(bias);
        plan.max_blocks = std::max(plan.max_blocks, kv.pool().BlocksFor(plan.keys[i]));
        continue;
      }
      // Query t of the chunk sees the keys up to its own position (all of them: cross).
      const int64_t length = cross ? plan.keys[i] : past + t + 1;
      PagedQuery query{&kv, length, at::Tensor()};
      if (bias.defined() && !causal_only_) {
        query.bias = bias.select(2, t).narrow(2, 0, length).to(at::kFloat)
                         .expand({1, num_heads, length}).reshape({num_heads, length});
        if (query.bias.stride(1) != 1 && length > 1) query.bias = query.bias.contiguous();
      }
      plan.decode.push_back(std::move(query));
    }
    offset += s.num_tokens;
  }
  if (!BuildGatheredBatch(plan, cross, q, gathered, offsets)) {
    for (size_t i : gathered) {
      const PagedKv& kv = cross ? *sequences_[i].cross : *sequences_[i].kv;
      plan.index[i] = kv.BlockIndex(plan.keys[i], device);
      plan.bias[i] = cross ? at::Tensor() : bias_(kv.length(), sequences_[i].num_tokens);
    }
  }
  plan.decode_rows = at::tensor(rows, at::kLong).to(device);
  if (!kernel && !rows.empty()) {
    // Each decode query's blocks padded to the longest with block 0; the padding is masked out
    // and its (possibly uninitialised) keys and values zeroed after the gather.
    const int64_t block = (cross ? *sequences_[0].cross : *sequences_[0].kv).pool().block_size();
    const int64_t queries = static_cast<int64_t>(rows.size()), max_keys = plan.max_blocks * block;
    // Built on the host and sent once (per-query ATen calls are host work a GPU step waits on).
    std::vector<int64_t> table(static_cast<size_t>(queries * plan.max_blocks), 0);
    std::vector<uint8_t> past_end(static_cast<size_t>(queries * max_keys), 1);
    for (int64_t j = 0; j < queries; ++j) {
      const size_t i = plan.decode_of[static_cast<size_t>(j)];
      const PagedKv& kv = cross ? *sequences_[i].cross : *sequences_[i].kv;
      const int64_t used = kv.pool().BlocksFor(plan.keys[i]);
      std::copy(kv.blocks().begin(), kv.blocks().begin() + used,
                table.begin() + j * plan.max_blocks);
      std::fill_n(past_end.begin() + j * max_keys, plan.keys[i], uint8_t{0});
    }
    plan.table = at::tensor(table, at::kLong).to(device);
    const at::Tensor invalid = UploadMask(past_end, {queries, max_keys}, device);
    plan.mask = at::zeros({queries, 1, 1, max_keys}, q.options())
                    .masked_fill(invalid.view({queries, 1, 1, max_keys}), MaskValue(q.scalar_type()));
    bool any_bias = false;
    for (const at::Tensor& b : decode_bias) any_bias = any_bias || b.defined();
    if (any_bias) {
      std::vector<at::Tensor> padded;
      for (int64_t j = 0; j < queries; ++j) {
        const at::Tensor& b = decode_bias[static_cast<size_t>(j)];
        const int64_t keys = plan.keys[plan.decode_of[static_cast<size_t>(j)]];
        if (!b.defined()) {
          padded.push_back(at::zeros({1, num_heads, 1, max_keys}, q.options()));
          continue;
        }
        // One call per query: the row padded with zeros past its keys (T5: a view of the
        // model's precomputed row, already [1, H, 1, keys]).
        const at::Tensor row = b.size(1) == num_heads ? b : b.expand({1, num_heads, 1, keys});
        padded.push_back(at::constant_pad_nd(row.to(q.scalar_type()), {0, max_keys - keys}, 0));
      }
      plan.mask = plan.mask + at::cat(padded, 0);
    }
    plan.invalid = invalid.view({queries, 1, max_keys, 1});
  }
  plan.built = true;
}

bool RaggedAttention::BuildGatheredBatch(Plan& plan, bool cross, const at::Tensor& q,
                                         const std::vector<size_t>& gathered,
                                         const std::vector<int64_t>& offsets) const {
  // One sequence gathers on its own (its scores are all it needs). Two or more run as one
  // padded batch, unless the padding would more than double the score elements (one long
  // chunk beside short ones).
  if (gathered.size() < 2) return false;
  const int64_t n = static_cast<int64_t>(gathered.size());
  const PagedKv& first = cross ? *sequences_[gathered[0]].cross : *sequences_[gathered[0]].kv;
  const KvPool& pool = first.pool();
  const int64_t block = pool.block_size();
  int64_t max_tokens = 0, max_keys = 0, scores = 0;
  for (size_t i : gathered) {
    max_tokens = std::max(max_tokens, sequences_[i].num_tokens);
    max_keys = std::max(max_keys, plan.keys[i]);
    scores += sequences_[i].num_tokens * plan.keys[i];
  }
  const int64_t max_blocks = pool.BlocksFor(max_keys), padded_keys = max_blocks * block;
  if (n * max_tokens * padded_keys > 2 * scores + 65536) return false;

  // Built on the host and sent once: block tables, query rows, which keys each query sees.
  std::vector<int64_t> table(static_cast<size_t>(n * max_blocks), 0);
  std::vector<int64_t> rows(static_cast<size_t>(n * max_tokens), 0), out_rows;
  std::vector<uint8_t> hidden(static_cast<size_t>(n * max_tokens * padded_keys), 1);
  std::vector<uint8_t> past_end(static_cast<size_t>(n * padded_keys), 1);
  std::vector<at::Tensor> biases;  // per sequence (self-attention beyond the causal mask)
  const bool with_bias = !cross && !causal_only_;
  for (int64_t j = 0; j < n; ++j) {
    const size_t i = gathered[static_cast<size_t>(j)];
    const RaggedSequence& s = sequences_[i];
    const PagedKv& kv = cross ? *s.cross : *s.kv;
    const int64_t past = cross ? 0 : kv.length(), keys = plan.keys[i];
    std::copy(kv.blocks().begin(), kv.blocks().begin() + pool.BlocksFor(keys),
              table.begin() + j * max_blocks);
    std::fill_n(past_end.begin() + j * padded_keys, keys, uint8_t{0});
    for (int64_t t = 0; t < s.num_tokens; ++t) {
      const int64_t row = j * max_tokens + t;
      rows[static_cast<size_t>(row)] = offsets[i] + t;
      out_rows.push_back(row);
      // Self-attention: query t sees keys up to its own position; cross: every encoder key.
      std::fill_n(hidden.begin() + row * padded_keys, cross ? keys : past + t + 1, uint8_t{0});
    }
    if (with_bias) {
      const at::Tensor bias = bias_(past, s.num_tokens);  // [1, 1 or H, T, keys]
      if (bias.defined()) {
        biases.push_back(at::constant_pad_nd(
            bias.expand({1, q.size(1), s.num_tokens, keys}).to(q.scalar_type()),
            {0, padded_keys - keys, 0, max_tokens - s.num_tokens}, 0));
      } else {
        biases.push_back(at::zeros({1, q.size(1), max_tokens, padded_keys}, q.options()));
      }
    }
  }
  const at::Device device = q.device();
  plan.batch_of = gathered;
  plan.batch_tokens = max_tokens;
  plan.batch_blocks = max_blocks;
  plan.batch_table = at::tensor(table, at::kLong).to(device);
  plan.batch_rows = at::tensor(rows, at::kLong).to(device);
  plan.batch_out_rows = at::tensor(out_rows, at::kLong).to(device);
  plan.batch_invalid = UploadMask(past_end, {n, 1, padded_keys, 1}, device);
  plan.batch_mask = at::zeros({n, 1, max_tokens, padded_keys}, q.options())
                        .masked_fill(UploadMask(hidden, {n, 1, max_tokens, padded_keys}, device),
                                     MaskValue(q.scalar_type()));
  if (with_bias) plan.batch_mask = plan.batch_mask + at::cat(biases, 0);
  return true;
}

at::Tensor RaggedAttention::PaddedDecode(const Plan& plan, int64_t layer, const at::Tensor& q,
                                         double scale, bool cross, bool all_rows) const {
  const PagedKv& first = cross ? *sequences_[plan.decode_of[0]].cross
                               : *sequences_[plan.decode_of[0]].kv;
  const KvPool& pool = first.pool();
  const int64_t queries = plan.decode_rows.size(0);
  auto gather = [&](const at::Tensor& storage) {
    return GatherPadded(storage, plan.table, queries, plan.max_blocks, plan.invalid);
  };
  const at::Tensor rows = all_rows ? q[0] : q[0].index_select(1, plan.decode_rows);
  const at::Tensor qd = rows.transpose(0, 1).unsqueeze(2);
  return Attention(qd, gather(pool.keys(layer)), gather(pool.values(layer)), plan.mask, scale);
}

at::Tensor RaggedAttention::GatheredBatch(const Plan& plan, int64_t layer, const at::Tensor& q,
                                          double scale, bool cross) const {
  const PagedKv& first = cross ? *sequences_[plan.batch_of[0]].cross
                               : *sequences_[plan.batch_of[0]].kv;
  const KvPool& pool = first.pool();
  const int64_t n = static_cast<int64_t>(plan.batch_of.size()), heads = q.size(1);
  auto gather = [&](const at::Tensor& storage) {
    return GatherPadded(storage, plan.batch_table, n, plan.batch_blocks, plan.batch_invalid);
  };
  // [n, H, max_tokens, D]: each sequence's rows, padded (padding rows repeat row 0, unused).
  const at::Tensor qb = q[0].index_select(1, plan.batch_rows)
                            .view({heads, n, plan.batch_tokens, q.size(3)})
                            .transpose(0, 1);
  const at::Tensor out =
      Attention(qb, gather(pool.keys(layer)), gather(pool.values(layer)), plan.batch_mask, scale);
  // Back to the sequences' rows, in step order: [H, tokens of the batch, D].
  return out.transpose(0, 1)
      .reshape({heads, n * plan.batch_tokens, out.size(3)})
      .index_select(1, plan.batch_out_rows);
}

at::Tensor RaggedAttention::Attend(int64_t layer, const at::Tensor& q, double scale, bool cross) {
  Plan& plan = cross ? cross_plan_ : self_plan_;
  if (!plan.built) BuildPlan(plan, cross, q);
  const int64_t num_heads = q.size(1);
  std::vector<at::Tensor> outputs(sequences_.size());
  if (!plan.batch_of.empty()) {
    const at::Tensor batch = GatheredBatch(plan, layer, q, scale, cross);  // [H, rows, D]
    if (plan.batch_of.size() == sequences_.size()) return batch.unsqueeze(0);  // every row
    int64_t start = 0;
    for (size_t i : plan.batch_of) {
      outputs[i] = batch.narrow(1, start, sequences_[i].num_tokens).unsqueeze(0);
      start += sequences_[i].num_tokens;
    }
  }
  int64_t offset = 0;
  for (size_t i = 0; i < sequences_.size(); ++i) {
    const RaggedSequence& s = sequences_[i];
    if (plan.first_query[i] < 0 && !outputs[i].defined()) {
      const PagedKv& kv = cross ? *s.cross : *s.kv;
      const auto [k, v] = kv.Gather(layer, plan.keys[i], plan.index[i]);
      outputs[i] = Attention(q.narrow(2, offset, s.num_tokens), k, v, plan.bias[i], scale);
    }
    offset += s.num_tokens;
  }
  if (!plan.decode_of.empty()) {
    // Every query of the step is a decode query, in order (a decode-only step): the kernel's
    // [n, H, D] or the padded batch's [n, H, 1, D] is the whole output, with no gather of the
    // rows and no per-sequence split and concatenation. On the padded (CUDA) path that is two
    // ATen calls per sequence and layer fewer, two of them kernels per layer: 1507 -> 1135
    // top-level ATen calls per Llama-110m decode step at batch 16 (counted on the CPU with
    // the kernels off, which takes the same path), where the GPU step is bound by dispatch.
    const bool all_rows = plan.decode_rows.size(0) == q.size(2);
    if (all_rows && !plan.decode.empty()) {
      return PagedDecodeAttention(q[0].transpose(0, 1), plan.decode, layer, scale)
          .transpose(0, 1)
          .unsqueeze(0);
    }
    if (all_rows) {
      return PaddedDecode(plan, layer, q, scale, cross, /*all_rows=*/true)
          .view({q.size(2), num_heads, -1})
          .transpose(0, 1)
          .unsqueeze(0);
    }
    // A mixed step (prefill chunks beside decode queries): the decode queries' rows go into the
    // step's output with one index_copy_ and every other sequence's with one slice copy, rather
    // than a view per decode sequence and a cat of them all. On the padded (CUDA) path, where
    // such a step runs eagerly and bound by dispatch, that is ~2 ATen calls per decode sequence
    // and layer fewer: a 64-token arrival beside 15 decoding sequences went from 1510 to 1222
    // top-level calls for Llama-110m and from 1184 to 896 for GPT-1 (triad-bench's arrival16
    // with --cpu-kernels off, which takes the padded path).
    // [n, H, D] (kernel) or [n, H, 1, D] (padded batch), one row per decode query -> [H, n, D].
    const at::Tensor decoded =
        plan.decode.empty()
            ? PaddedDecode(plan, layer, q, scale, cross, /*all_rows=*/false).squeeze(2)
            : PagedDecodeAttention(q[0].index_select(1, plan.decode_rows).transpose(0, 1),
                                   plan.decode, layer, scale);
    at::Tensor result = at::empty(q.sizes(), q.options());
    result[0].index_copy_(1, plan.decode_rows, decoded.transpose(0, 1));
    offset = 0;
    for (size_t i = 0; i < sequences_.size(); ++i) {
      if (outputs[i].defined()) result.narrow(2, offset, sequences_[i].num_tokens).copy_(outputs[i]);
      offset += sequences_[i].num_tokens;
    }
    return result;
  }
  return outputs.size() == 1 ? outputs[0] : at::cat(outputs, 2);
}

StaticDecodeAttention::Keys StaticDecodeAttention::BuildKeys(const at::Tensor& lengths,
                                                              int64_t keys, const at::Tensor& q,
                                                              const at::Tensor& bias) const {
  const int64_t rows = in_.rows;
  const at::Tensor invalid =
      at::arange(keys, lengths.options()).unsqueeze(0).ge(lengths.unsqueeze(1));
  at::Tensor mask = at::zeros({rows, 1, 1, keys}, q.options())
                        .masked_fill(invalid.view({rows, 1, 1, keys}), MaskValue(q.scalar_type()));
  if (bias.defined()) mask = mask + bias;
  return {mask, invalid.view({rows, 1, keys, 1})};
}

at::Tensor StaticDecodeAttention::Attend(int64_t layer, const at::Tensor& q, double scale,
                                         const at::Tensor& table, int64_t blocks,
                                         const Keys& keys) const {
  const int64_t rows = in_.rows;
  auto gather = [&](const at::Tensor& storage) {
    return GatherPadded(storage, table, rows, blocks, keys.invalid);
  };
  // [rows, H, 1, D] -> the step's [1, H, rows, D].
  return Attention(q[0].transpose(0, 1).unsqueeze(2), gather(pool_.keys(layer)),
                   gather(pool_.values(layer)), keys.mask, scale)
      .view({rows, q.size(1), -1})
      .transpose(0, 1)
      .unsqueeze(0);
}

at::Tensor StaticDecodeAttention::SelfAttend(int64_t layer, const at::Tensor& q,
                                             const at::Tensor& k, const at::Tensor& v,
                                             double scale) {
  pool_.WriteSlots(layer, in_.slots, k[0], v[0]);
  if (!self_.mask.defined()) {
    self_ = BuildKeys(in_.lengths, in_.blocks * pool_.block_size(), q, self_bias_);
  }
  return Attend(layer, q, scale, in_.table, in_.blocks, self_);
}

at::Tensor StaticDecodeAttention::CrossAttend(int64_t layer, const at::Tensor& q, double scale) {
  if (in_.cross_blocks == 0) throw std::logic_error("a static decode step without encoder keys");
  if (!cross_.mask.defined()) {
    cross_ = BuildKeys(in_.cross_lengths, in_.cross_blocks * pool_.block_size(), q, at::Tensor());
  }
  return Attend(layer, q, scale, in_.cross_table, in_.cross_blocks, cross_);
}

}  // namespace triad
