// MappedFile: a whole file mapped read-only, with page-granular release. Internal to triad_io.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace triad::io {

// Thread contract: immutable after Open; ReleaseRange only calls madvise and is thread-safe.
class MappedFile {
 public:
  // NotFound if the path does not exist; InvalidArgument if it is not a regular file. An empty
  // file is opened without a mapping (data() is nullptr, size() is 0).
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  // madvise(MADV_DONTNEED) on the pages lying entirely inside [offset, offset + length), so a
  // page shared with bytes outside the range stays resident. The mapping is private and never
  // written, so dropped pages read back from the file unchanged. Out-of-range parts are ignored.
  void ReleaseRange(size_t offset, size_t length) const;

 private:
  MappedFile(uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint8_t* data_;
  size_t size_;
};

}  // namespace triad::io
