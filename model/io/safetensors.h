// triad_io public API: memory-mapped safetensors checkpoints (one file or an index of shards)
// and a writer. No LibTorch here: the model library wraps TensorView::data with at::from_blob.
//
// A file is validated completely in Open (header JSON, dtypes, shapes, offsets, and that the
// tensors tile the data section exactly) before any tensor byte is handed out, so callers
// never need to bounds-check a TensorView. Every error is an absl::Status whose message names
// the file and, where it applies, the tensor and the JSON key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace triad::io {

class MappedFile;

// The safetensors dtypes Triad loads. Others in the spec (U16, U32, U64, F8_*) are rejected at
// Open with an error naming the dtype and the tensor.
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// The spec's spelling: "F32", "BF16", "BOOL", ...
std::string_view DTypeName(DType dtype);
// Bytes per element (BOOL is one byte).
size_t DTypeSize(DType dtype);
// Inverse of DTypeName; nullopt for names Triad does not support.
std::optional<DType> DTypeFromName(std::string_view name);

// One tensor inside a mapping. Valid while the SafetensorsFile / Checkpoint that returned it
// lives. `data` is aligned only as well as the file lays it out: files written by HF and by
// WriteSafetensors pad the header to 8 bytes, so data is 8-byte aligned if `begin` is.
struct TensorView {
  std::string_view name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // empty for a scalar
  const void* data = nullptr;  // read-only; num_bytes readable bytes (may be 0)
  size_t num_bytes = 0;        // == num_elements() * DTypeSize(dtype), checked at Open

  int64_t num_elements() const;
};

// One .safetensors file, mapped read-only.
// Thread contract: immutable after Open, so every const method may be called concurrently;
// Release only advises the kernel and is thread-safe too. If the file is truncated on disk
// while mapped, reading a tensor raises SIGBUS; checkpoints are assumed not to change in place.
class SafetensorsFile {
 public:
  // Rejects a header larger than this (the spec's parsers use the same 100 MB bound), so a
  // corrupt size field cannot make us parse gigabytes of tensor data as JSON.
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensor names in storage order (ascending data offset).
  const std::vector<std::string>& names() const { return names_; }
  // nullptr if the file has no tensor of that name.
  const TensorView* Find(std::string_view name) const;
  // The optional "__metadata__" map (empty if absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Drops the mapped pages that lie entirely inside the tensor's bytes (madvise DONTNEED), so
  // that once the loader has converted a tensor its file pages stop counting as resident. Pages
  // shared with a neighbouring tensor are kept. The view stays readable: a later read faults
  // the page back in from the file. Unknown names are ignored.
  void Release(std::string_view name) const;

 private:
  SafetensorsFile() = default;

  std::string path_;
  std::unique_ptr<MappedFile> mapping_;
  std::vector<std::string> names_;
  std::vector<TensorView> views_;  // parallel to names_; views_[i].name points into names_[i]
  std::map<std::string_view, size_t, std::less<>> index_;  // name -> position in views_
  std::map<std::string, std::string> metadata_;
};

// A model folder's weights: `model.safetensors`, or else the shards listed by
// `model.safetensors.index.json`. Sharded checkpoints are checked at Open: every shard exists,
// every tensor of the weight_map is in its shard, each shard holds only tensors the weight_map
// assigns to it, and no tensor is stored in two shards.
// Thread contract: as SafetensorsFile (immutable after Open; Release is thread-safe).
class Checkpoint {
 public:
  static constexpr char kSingleFileName[] = "model.safetensors";
  static constexpr char kIndexFileName[] = "model.safetensors.index.json";

  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);
  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  // nullptr if no file of the checkpoint has the tensor.
  const TensorView* Find(std::string_view name) const;
  // Path of the file holding `name` (for error messages); empty if absent.
  std::string FileOf(std::string_view name) const;
  // All tensor names: files in name order, then storage order within each file.
  std::vector<std::string> names() const;
  // The single file's "__metadata__", or the index's "metadata" (non-string values such as
  // total_size are kept as their JSON text).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // See SafetensorsFile::Release.
  void Release(std::string_view name) const;

 private:
  Checkpoint() = default;

  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string_view, const SafetensorsFile*, std::less<>> owner_;  // keys owned by files_
  std::map<std::string, std::string> metadata_;
};

// One tensor for WriteSafetensors. `data` must hold product(shape) * DTypeSize(dtype) bytes
// (may be nullptr when that is 0).
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes a safetensors file whose data is laid out in the given order, header padded with
// spaces to a multiple of 8 (as HF does). Used by tests and by the benchmark, which writes
// random-weight checkpoints. Rejects empty, duplicate or reserved ("__metadata__") names and
// negative dims. Overwrites `path`.
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace triad::io
