// Paged key/value storage for continuous batching (the vLLM scheme): one pool of fixed-size
// blocks per resident model, allocated once, and per sequence a block table (PagedKv) that
// grows a block at a time as the sequence does. A sequence holds only the blocks its tokens
// fill, so a KV budget is spent on what sequences have written rather than on what they might
// write, and freeing a finished sequence returns its blocks at once with no copying.
//
// Layout, per layer: keys and values [num_kv_heads, num_blocks, block_size, head_dim] in the
// serving dtype on the model's device. Gathering one sequence's blocks (index_select along the
// block axis) yields a contiguous [num_kv_heads, positions, head_dim] with a single copy; the
// CPU decode kernel (PagedDecodeAttention) reads the blocks where they lie.
//
// Prefix caching (vLLM's automatic prefix caching): a full block can be registered under the
// tokens it holds and the key of the block before it; a later sequence whose tokens start the
// same way adopts the registered blocks, shared and reference-counted (full blocks are never
// written again), instead of recomputing them. Keys are 64-bit hashes of the whole prefix,
// checked against the block's stored tokens and its predecessor's key. A registered block that
// no sequence holds stays cached and counts as free: new allocations take never-used blocks
// first, then evict cached ones, least recently released first.
//
// Thread contract: block accounting (Allocate, Free, Hold, Unhold, the prefix cache, the
// counters) is thread-safe; the storage tensors are written only by the thread that runs the
// sequences.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

namespace triad {

// Thrown (inside the model library, turned into RESOURCE_EXHAUSTED by Model's public
// methods) when a sequence needs a block and the pool has none free.
class KvPoolExhausted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct KvPoolShape {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;  // positions per block
};

class KvPool {
 public:
  // Allocates the storage (on CPU the pages are committed only when first written).
  KvPool(KvPoolShape shape, int64_t num_blocks, at::ScalarType dtype, at::Device device);
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  const KvPoolShape& shape() const { return shape_; }
  int64_t block_size() const { return shape_.block_size; }
  int64_t num_blocks() const { return num_blocks_; }
  // Bytes of one block over every layer, keys and values.
  int64_t block_bytes() const;
  // Blocks needed for `positions` positions.
  int64_t BlocksFor(int64_t positions) const {
    return (positions + shape_.block_size - 1) / shape_.block_size;
  }
  int64_t free_blocks() const;
  // Blocks in use: allocated to sequences or held.
  int64_t used_blocks() const { return num_blocks_ - free_blocks(); }
  int64_t peak_used_blocks() const;

  // Appends `n` free block ids to `blocks`; false (taking none) when fewer than `n` are free.
  bool Allocate(int64_t n, std::vector<int32_t>& blocks);
  // Returns `blocks` to the pool and clears it.
  void Free(std::vector<int32_t>& blocks);
  // Counts `n` blocks as used without handing out storage: set aside for allocations to come
  // (the scheduler holds a block per beam for the forks after a step). False (holding none)
  // when too few are free.
  bool Hold(int64_t n);
  void Unhold(int64_t n);
  // One more holder for each of `blocks` (each already held by someone): sharing, as a forked
  // beam shares its parent's full blocks. Free releases them like any other.
  void Retain(const std::vector<int32_t>& blocks);

  // Prefix cache. The key of a block holding `tokens` (block_size of them) after a prefix whose
  // last block has key `parent` (0 for the first block).
  static uint64_t BlockKey(uint64_t parent, const int64_t* tokens, int64_t count);
  // Appends to `blocks` the registered blocks that hold the longest cached run of whole
  // blocks of `tokens` (at most `max_blocks`), each now also held by the caller (Free
  // releases them). Returns how many; `*last_key` = the key of the last one adopted.
  int64_t AdoptPrefix(const std::vector<int64_t>& tokens, int64_t max_blocks,
                      std::vector<int32_t>& blocks, uint64_t* last_key);
  // Registers `block` (full, held by the caller) as holding `tokens` after the prefix keyed
  // `parent`; returns its key. When that key is registered already the block stays private.
  uint64_t Register(int32_t block, uint64_t parent, const int64_t* tokens);
  // Blocks registered in the prefix cache (held or not).
  int64_t cached_blocks() const;

  const at::Tensor& keys(int64_t layer) const { return keys_[static_cast<size_t>(layer)]; }
  const at::Tensor& values(int64_t layer) const { return values_[static_cast<size_t>(layer)]; }
  // Writes k, v [num_kv_heads, T, head_dim] of `layer` to the flat slots [T] (int64, on the
  // pool's device; from PagedKv::AppendSlots of the sequences the T positions belong to).
  void WriteSlots(int64_t layer, const at::Tensor& slots, const at::Tensor& k,
                  const at::Tensor& v) const;
  // Copies block `from`'s keys and values into block `to`, every layer at once.
  void CopyBlock(int64_t from, int64_t to) const;

 private:
  KvPoolShape shape_;
  int64_t num_blocks_;
  at::Tensor all_keys_, all_values_;     // [layers, num_kv_heads, blocks, block_size, head_dim]
  std::vector<at::Tensor> keys_, values_;  // per layer: views of all_keys_ / all_values_
  // Prefix-cache entry of a block (guarded by mu_).
  struct Entry {
    bool registered = false;
    uint64_t key = 0, parent = 0;
    std::vector<int64_t> tokens;
    std::list<int32_t>::iterator lru;  // in evictable_ while no sequence holds it
  };
  int64_t AvailableLocked() const;

  mutable std::mutex mu_;
  // All guarded by mu_.
  std::vector<int32_t> free_;  // never-used or unregistered; a stack (recently freed first)
  std::vector<int32_t> refs_;  // per block: how many sequences hold it
  std::vector<Entry> entries_;
  std::unordered_map<uint64_t, int32_t> by_key_;
  std::list<int32_t> evictable_;  // registered, held by none; front = least recently released
  int64_t held_ = 0;
  int64_t peak_used_ = 0;
};

// One sequence's keys and values in a KvPool: its block table and length. Releases its blocks
// when destroyed.
class PagedKv {
 public:
  explicit PagedKv(KvPool& pool) : pool_(&pool) {}
  ~PagedKv() { pool_->Free(blocks_); }
  PagedKv(const PagedKv&) = delete;
  PagedKv& operator=(const PagedKv&) = delete;

  KvPool& pool() const { return *pool_; }
  int64_t length() const { return length_; }
  int64_t capacity() const { return static_cast<int64_t>(blocks_.size()) * pool_->block_size(); }
  const std::vector<int32_t>& blocks() const { return blocks_; }
  // Makes room for `positions` positions in all; false (taking no block) when the pool is short.
  bool Reserve(int64_t positions);
  // The flat pool slots (block * block_size + offset) of positions length()..length()+T-1,
  // appended to `slots`, taking blocks as needed (throws KvPoolExhausted when the pool is
  // short): what KvPool::WriteSlots takes, so that a step writes every sequence's new keys
  // with one copy per layer.
  void AppendSlots(int64_t num_tokens, std::vector<int64_t>& slots);
  // Call once every layer has written the step's T positions.
  void Advance(int64_t num_tokens) { length_ += num_tokens; }
  // The ids of the blocks holding positions 0..positions-1, as an int64 tensor on `device`
  // (what Gather takes; build it once for every layer of a step).
  at::Tensor BlockIndex(int64_t positions, const at::Device& device) const;
  // Prefix caching. On an empty sequence: adopts the cached blocks of the longest run of whole
  // blocks of `tokens` (at most `max_blocks`) and sets length() past them; returns how many
  // positions that skipped.
  int64_t AdoptPrefix(const std::vector<int64_t>& tokens, int64_t max_blocks);
  // On an empty sequence: becomes a copy of `source` (same pool) without copying what can be
  // shared. Its full blocks are shared (never written again); the partly filled last block is
  // copied into a fresh block when `copy_partial` (both sequences will write after it), else
  // shared too (storage that is never appended to, like T5's cross-attention keys). Throws
  // KvPoolExhausted, taking nothing, when the copy needs a block and none is free.
  void ForkFrom(const PagedKv& source, bool copy_partial);
  // Registers every block that is full and whose tokens are known (`tokens`: this sequence's
  // tokens from position 0) and not registered yet, so later sequences can adopt them.
  void RegisterFullBlocks(const std::vector<int64_t>& tokens);
  // Keys and values of `layer` at positions 0..positions-1 as [1, num_kv_heads, positions,
  // head_dim] (a copy; positions <= capacity(); `index` = BlockIndex(positions, ...)).
  std::pair<at::Tensor, at::Tensor> Gather(int64_t layer, int64_t positions,
                                           const at::Tensor& index) const;

 private:
  KvPool* pool_;
  std::vector<int32_t> blocks_;
  int64_t length_ = 0;
  int64_t registered_ = 0;  // leading blocks registered or adopted
  uint64_t last_key_ = 0;   // the key of the last of them
};

// One single-token query of PagedDecodeAttention.
struct PagedQuery {
  const PagedKv* kv = nullptr;
  int64_t length = 0;  // attends to positions 0..length-1 of `kv`
  // Additive float32 bias [num_heads, length] (CPU; columns contiguous, rows at any stride,
  // e.g. a view of a wider table), or undefined.
  at::Tensor bias;
};

// softmax(q k^T * scale + bias) v for single-token queries reading their keys and values
// straight from the pool blocks of `layer` (CPU only, no copy of the cache): q [n, H, D] in
// the pool's dtype, one row per query; returns [n, H, D]. Scores and softmax in float32.
// H must be a multiple of the pool's num_kv_heads (query head h reads kv head h / (H / Hkv)).
at::Tensor PagedDecodeAttention(const at::Tensor& q, const std::vector<PagedQuery>& queries,
                                int64_t layer, double scale);

}  // namespace triad
