#include "model/kv_pool.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "model/huge_pages.h"
#include "model/kernels/rows.h"

namespace triad {

KvPool::KvPool(KvPoolShape shape, int64_t num_blocks, at::ScalarType dtype, at::Device device)
    : shape_(shape), num_blocks_(num_blocks) {
  if (num_blocks < 1 || num_blocks > std::numeric_limits<int32_t>::max() ||
      shape.block_size < 1 || shape.num_layers < 1 || shape.num_kv_heads < 1 ||
      shape.head_dim < 1) {
    throw std::invalid_argument("KvPool: bad shape or block count " + std::to_string(num_blocks));
  }
  const auto options = at::TensorOptions().dtype(dtype).device(device);
  // Zeroed, so the whole pool is committed here, once: left to first touch, every block a
  // sequence took for the first time cost page faults on the scheduler's critical path (a
  // busy CPU server touches hundreds of MB of fresh blocks in its first minutes: ~10% of
  // triadd's CPU time at concurrency 16 on Llama-110m, two cores). The pool is the KV budget
  // the configuration asked for, as vLLM reserves its cache up front.
  // One tensor per role for every layer, so that copying a block (a fork's partly filled last
  // block) is one copy for all layers rather than one per layer.
  // On huge pages where the kernel has them (huge_pages.h).
  const std::vector<int64_t> dims = {shape.num_layers, shape.num_kv_heads, num_blocks,
                                     shape.block_size, shape.head_dim};
  all_keys_ = EmptyHugePaged(dims, options).zero_();
  all_values_ = EmptyHugePaged(dims, options).zero_();
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    keys_.push_back(all_keys_[l]);
    values_.push_back(all_values_[l]);
  }
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
  refs_.assign(static_cast<size_t>(num_blocks), 0);
  entries_.resize(static_cast<size_t>(num_blocks));
}

int64_t KvPool::AvailableLocked() const {
  return static_cast<int64_t>(free_.size() + evictable_.size()) - held_;
}

int64_t KvPool::block_bytes() const {
  return 2 * shape_.num_layers * shape_.num_kv_heads * shape_.block_size * shape_.head_dim *
         static_cast<int64_t>(keys_[0].element_size());
}

int64_t KvPool::free_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return AvailableLocked();
}

int64_t KvPool::cached_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(by_key_.size());
}

int64_t KvPool::peak_used_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_used_;
}

bool KvPool::Allocate(int64_t n, std::vector<int32_t>& blocks) {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > AvailableLocked()) return false;
  for (int64_t i = 0; i < n; ++i) {
    int32_t block;
    if (!free_.empty()) {
      block = free_.back();
      free_.pop_back();
    } else {  // evict the least recently released cached block
      block = evictable_.front();
      evictable_.pop_front();
      Entry& e = entries_[static_cast<size_t>(block)];
      by_key_.erase(e.key);
      e = Entry();
    }
    refs_[static_cast<size_t>(block)] = 1;
    blocks.push_back(block);
  }
  peak_used_ = std::max(peak_used_, num_blocks_ - AvailableLocked());
  return true;
}

void KvPool::Free(std::vector<int32_t>& blocks) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    const int32_t block = *it;
    if (--refs_[static_cast<size_t>(block)] > 0) continue;
    Entry& e = entries_[static_cast<size_t>(block)];
    if (e.registered) {
      e.lru = evictable_.insert(evictable_.end(), block);
    } else {
      free_.push_back(block);
    }
  }
  blocks.clear();
}

bool KvPool::Hold(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > AvailableLocked()) return false;
  held_ += n;
  peak_used_ = std::max(peak_used_, num_blocks_ - AvailableLocked());
  return true;
}

uint64_t KvPool::BlockKey(uint64_t parent, const int64_t* tokens, int64_t count) {
  // FNV-1a over the parent key and the token ids, then a splitmix64 finish; never 0.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t x) {
    for (int byte = 0; byte < 8; ++byte) {
      h ^= (x >> (8 * byte)) & 0xffu;
      h *= 1099511628211ull;
    }
  };
  mix(parent);
  for (int64_t i = 0; i < count; ++i) mix(static_cast<uint64_t>(tokens[i]));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h == 0 ? 1 : h;
}

int64_t KvPool::AdoptPrefix(const std::vector<int64_t>& tokens, int64_t max_blocks,
                            std::vector<int32_t>& blocks, uint64_t* last_key) {
  const int64_t bs = shape_.block_size;
  max_blocks = std::min(max_blocks, static_cast<int64_t>(tokens.size()) / bs);
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t parent = 0;
  int64_t adopted = 0;
  for (; adopted < max_blocks; ++adopted) {
    const int64_t* first = tokens.data() + adopted * bs;
    const uint64_t key = BlockKey(parent, first, bs);
    auto found = by_key_.find(key);
    if (found == by_key_.end()) break;
    const int32_t block = found->second;
    Entry& e = entries_[static_cast<size_t>(block)];
    if (e.parent != parent || !std::equal(e.tokens.begin(), e.tokens.end(), first)) break;
    if (refs_[static_cast<size_t>(block)]++ == 0) evictable_.erase(e.lru);
    blocks.push_back(block);
    parent = key;
  }
  if (adopted > 0) peak_used_ = std::max(peak_used_, num_blocks_ - AvailableLocked());
  *last_key = parent;
  return adopted;
}

uint64_t KvPool::Register(int32_t block, uint64_t parent, const int64_t* tokens) {
  const int64_t bs = shape_.block_size;
  const uint64_t key = BlockKey(parent, tokens, bs);
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[static_cast<size_t>(block)];
  if (e.registered || by_key_.count(key) > 0) return key;
  e.registered = true;
  e.key = key;
  e.parent = parent;
  e.tokens.assign(tokens, tokens + bs);
  by_key_.emplace(key, block);
  return key;
}

void KvPool::Retain(const std::vector<int32_t>& blocks) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const int32_t block : blocks) ++refs_[static_cast<size_t>(block)];
}

void KvPool::Unhold(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  held_ -= std::min(n, held_);
}

int64_t PagedKv::AdoptPrefix(const std::vector<int64_t>& tokens, int64_t max_blocks) {
  if (length_ != 0 || !blocks_.empty()) return 0;
  registered_ = pool_->AdoptPrefix(tokens, max_blocks, blocks_, &last_key_);
  length_ = registered_ * pool_->block_size();
  return length_;
}

void PagedKv::ForkFrom(const PagedKv& source, bool copy_partial) {
  const int64_t bs = pool_->block_size();
  const int64_t used = pool_->BlocksFor(source.length_);
  const bool partial = copy_partial && source.length_ % bs != 0;
  const int64_t shared = partial ? used - 1 : used;
  std::vector<int32_t> copy;
  if (partial) {
    if (!pool_->Allocate(1, copy)) {
      throw KvPoolExhausted("the KV cache pool has no free block to fork a sequence into (" +
                            std::to_string(pool_->num_blocks()) + " blocks of " +
                            std::to_string(bs) + " positions)");
    }
    const int64_t from = source.blocks_[static_cast<size_t>(shared)];
    try {
      pool_->CopyBlock(from, copy[0]);
    } catch (...) {
      pool_->Free(copy);
      throw;
    }
  }
  std::vector<int32_t> blocks(source.blocks_.begin(), source.blocks_.begin() + shared);
  pool_->Retain(blocks);
  blocks.insert(blocks.end(), copy.begin(), copy.end());
  pool_->Free(blocks_);
  blocks_ = std::move(blocks);
  length_ = source.length_;
  registered_ = source.registered_;
  last_key_ = source.last_key_;
}

void PagedKv::RegisterFullBlocks(const std::vector<int64_t>& tokens) {
  const int64_t bs = pool_->block_size();
  const int64_t full = std::min(length_, static_cast<int64_t>(tokens.size())) / bs;
  for (; registered_ < full; ++registered_) {
    last_key_ = pool_->Register(blocks_[static_cast<size_t>(registered_)], last_key_,
                                tokens.data() + registered_ * bs);
  }
}

bool PagedKv::Reserve(int64_t positions) {
  const int64_t need = pool_->BlocksFor(positions) - static_cast<int64_t>(blocks_.size());
  return need <= 0 || pool_->Allocate(need, blocks_);
}

namespace {

void ReserveOrThrow(PagedKv& kv, int64_t positions) {
  if (!kv.Reserve(positions)) {
    const KvPool& pool = kv.pool();
    throw KvPoolExhausted("the KV cache pool has no free block (" +
                          std::to_string(pool.num_blocks()) + " blocks of " +
                          std::to_string(pool.block_size()) + " positions)");
  }
}

}  // namespace

void PagedKv::AppendSlots(int64_t num_tokens, std::vector<int64_t>& slots) {
  ReserveOrThrow(*this, length_ + num_tokens);
  const int64_t bs = pool_->block_size();
  for (int64_t pos = length_; pos < length_ + num_tokens; ++pos) {
    slots.push_back(int64_t{blocks_[static_cast<size_t>(pos / bs)]} * bs + pos % bs);
  }
}

void KvPool::CopyBlock(int64_t from, int64_t to) const {
  all_keys_.select(2, to).copy_(all_keys_.select(2, from));
  all_values_.select(2, to).copy_(all_values_.select(2, from));
}

void KvPool::WriteSlots(int64_t layer, const at::Tensor& slots, const at::Tensor& k,
                        const at::Tensor& v) const {
  auto flat = [&](const at::Tensor& storage) {
    return storage.view({storage.size(0), storage.size(1) * storage.size(2), storage.size(3)});
  };
  flat(keys(layer)).index_copy_(1, slots, k);
  flat(values(layer)).index_copy_(1, slots, v);
}

at::Tensor PagedKv::BlockIndex(int64_t positions, const at::Device& device) const {
  const int64_t num_blocks = pool_->BlocksFor(positions);
  return at::tensor(std::vector<int64_t>(blocks_.begin(), blocks_.begin() + num_blocks), at::kLong)
      .to(device);
}

std::pair<at::Tensor, at::Tensor> PagedKv::Gather(int64_t layer, int64_t positions,
                                                  const at::Tensor& index) const {
  const KvPoolShape& s = pool_->shape();
  const int64_t num_blocks = index.size(0);
  auto gather = [&](const at::Tensor& pool) {
    return pool.index_select(1, index)
        .view({1, s.num_kv_heads, num_blocks * s.block_size, s.head_dim})
        .narrow(2, 0, positions);
  };
  return {gather(pool_->keys(layer)), gather(pool_->values(layer))};
}

namespace {

// Rounds a float32 intermediate to the serving dtype, as the eager ATen path stores it.
template <typename T>
inline float Round(float x) {
  return static_cast<float>(static_cast<T>(x));
}

// The row kernels for the dtypes that have them (float32, bf16 bits); a scalar loop else.
template <typename T>
void DotRows(const float* q, const T* rows, int64_t n, int64_t dim, float* out) {
  if constexpr (std::is_same_v<T, float>) {
    kernels::DotRowsF32(q, rows, n, dim, out);
  } else if constexpr (std::is_same_v<T, at::BFloat16>) {
    kernels::DotRowsBf16(q, reinterpret_cast<const uint16_t*>(rows), n, dim, out);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      float dot = 0;
      for (int64_t d = 0; d < dim; ++d) dot += q[d] * static_cast<float>(rows[i * dim + d]);
      out[i] = dot;
    }
  }
}
template <typename T>
void AxpyRows(const float* p, const T* rows, int64_t n, int64_t dim, float* acc) {
  if constexpr (std::is_same_v<T, float>) {
    kernels::AxpyRowsF32(p, rows, n, dim, acc);
  } else if constexpr (std::is_same_v<T, at::BFloat16>) {
    kernels::AxpyRowsBf16(p, reinterpret_cast<const uint16_t*>(rows), n, dim, acc);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t d = 0; d < dim; ++d) acc[d] += p[i] * static_cast<float>(rows[i * dim + d]);
    }
  }
}

// The softmax of the scaled, biased scores for reduced-precision T, rounding each
// intermediate to T where the eager path stores it in T (float32 takes
// kernels::ScaledSoftmaxF32).
template <typename T>
void Softmax(std::vector<float>& scores, float scale, const float* bias) {
  float max_score = -std::numeric_limits<float>::infinity();
  for (size_t t = 0; t < scores.size(); ++t) {
    float s = Round<T>(scores[t]);
    if (scale != 1.0f) s = Round<T>(s * scale);
    if (bias != nullptr) s = Round<T>(s + bias[t]);
    scores[t] = s;
    max_score = std::max(max_score, s);
  }
  float sum = 0;
  for (float& s : scores) {
    s = std::exp(s - max_score);
    sum += s;
  }
  for (float& s : scores) s = Round<T>(s / sum);
}

// One task per (query, head): the query against its KV head's blocks, one block of rows at a
// time, rounding the scores and probabilities to T where the eager path stores them in T.
template <typename T>
void DecodeAttention(const at::Tensor& q, const std::vector<PagedQuery>& queries,
                     const at::Tensor& keys, const at::Tensor& values, float scale,
                     at::Tensor& out) {
  const int64_t num_heads = q.size(1), head_dim = q.size(2);
  const int64_t kv_heads = keys.size(0), pool_blocks = keys.size(1), bs = keys.size(2);
  const int64_t group = num_heads / kv_heads;
  const T* qp = q.data_ptr<T>();
  const T* kp = keys.data_ptr<T>();
  const T* vp = values.data_ptr<T>();
  T* op = out.data_ptr<T>();
  const int64_t tasks = static_cast<int64_t>(queries.size()) * num_heads;
  // Tasks differ in cost (a prefill chunk's queries attend to 1..T positions), so threads take
  // them a few at a time from a shared counter rather than as fixed contiguous ranges.
  constexpr int64_t kTasksPerTake = 8;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
    std::vector<float> qf(static_cast<size_t>(head_dim)), acc(static_cast<size_t>(head_dim));
    std::vector<float> scores;
    for (int64_t task = 0, end = 0;; ++task) {
      if (task == end) {
        task = next.fetch_add(kTasksPerTake);
        if (task >= tasks) break;
        end = std::min(tasks, task + kTasksPerTake);
      }
      const int64_t i = task / num_heads, h = task % num_heads, kvh = h / group;
      const PagedQuery& query = queries[static_cast<size_t>(i)];
      const std::vector<int32_t>& blocks = query.kv->blocks();
      const int64_t length = query.length;
      const float* bias =
          query.bias.defined() ? query.bias.data_ptr<float>() + h * query.bias.stride(0) : nullptr;
      const T* qrow = qp + (i * num_heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) qf[static_cast<size_t>(d)] = static_cast<float>(qrow[d]);
      scores.resize(static_cast<size_t>(length));
      // Block b's rows of this KV head: [bs, head_dim] contiguous in the pool.
      auto block_rows = [&](const T* base, int64_t b) {
        return base + (kvh * pool_blocks + blocks[static_cast<size_t>(b)]) * bs * head_dim;
      };
      for (int64_t t = 0; t < length; t += bs) {
        DotRows(qf.data(), block_rows(kp, t / bs), std::min(bs, length - t), head_dim,
                scores.data() + t);
      }
      if constexpr (std::is_same_v<T, float>) {
        kernels::ScaledSoftmaxF32(scores.data(), length, scale, bias);
      } else {
        Softmax<T>(scores, scale, bias);
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t t = 0; t < length; t += bs) {
        AxpyRows(scores.data() + t, block_rows(vp, t / bs), std::min(bs, length - t), head_dim,
                 acc.data());
      }
      T* orow = op + (i * num_heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) orow[d] = static_cast<T>(acc[static_cast<size_t>(d)]);
    }
  });
}

}  // namespace

at::Tensor PagedDecodeAttention(const at::Tensor& q, const std::vector<PagedQuery>& queries,
                                int64_t layer, double scale) {
  if (queries.empty()) return at::empty({0, q.size(1), q.size(2)}, q.options());
  const KvPool& pool = queries[0].kv->pool();
  const at::Tensor& keys = pool.keys(layer);
  const at::Tensor& values = pool.values(layer);
  TORCH_CHECK(q.device().is_cpu() && keys.device().is_cpu(), "PagedDecodeAttention is CPU only");
  TORCH_CHECK(q.dim() == 3 && q.size(0) == static_cast<int64_t>(queries.size()) &&
                  q.size(2) == keys.size(3) && q.size(1) % keys.size(0) == 0,
              "PagedDecodeAttention: q must be [queries, heads, head_dim]");
  TORCH_CHECK(q.scalar_type() == keys.scalar_type(), "PagedDecodeAttention: dtype mismatch");
  for (const PagedQuery& query : queries) {
    TORCH_CHECK(&query.kv->pool() == &pool && query.length >= 1 &&
                    query.length <= query.kv->capacity(),
                "PagedDecodeAttention: query outside its sequence's blocks");
    TORCH_CHECK(!query.bias.defined() ||
                    (query.bias.scalar_type() == at::kFloat && query.bias.device().is_cpu() &&
                     query.bias.dim() == 2 && query.bias.size(0) == q.size(1) &&
                     query.bias.size(1) == query.length &&
                     (query.bias.stride(1) == 1 || query.length == 1)),
                "PagedDecodeAttention: bias must be float32 [heads, length] with unit column "
                "stride");
  }
  const at::Tensor qc = q.contiguous();
  at::Tensor out = at::empty_like(qc);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, qc.scalar_type(),
                                  "PagedDecodeAttention", [&] {
                                    DecodeAttention<scalar_t>(qc, queries, keys, values,
                                                              static_cast<float>(scale), out);
                                  });
  return out;
}

}  // namespace triad
