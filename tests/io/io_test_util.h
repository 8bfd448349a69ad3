// Helpers shared by the triad_io tests: a scratch folder and raw safetensors files.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "model/io/safetensors.h"
#include "tests/remove_tree.h"

namespace triad::io::testing {

inline std::string ModelsDir() { return std::string(TRIAD_TEST_DATA_DIR) + "/models"; }

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/triad_io_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << pattern;
    path_ = pattern;
  }
  ~TempDir() { triad::testing::RemoveTree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// A tensor's bytes, copied out of the mapping.
inline std::string ViewBytes(const TensorView& view) {
  return std::string(static_cast<const char*>(view.data), view.num_bytes);
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The 8-byte little-endian size field, then `header` verbatim, then `data_size` bytes
// (0, 1, 2, ...) of tensor data. Lets a test state exactly the header it wants to break.
inline std::string SafetensorsBytes(std::string_view header, size_t data_size,
                                    uint64_t declared_header_size) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(declared_header_size >> (8 * i)));
  bytes.append(header);
  for (size_t i = 0; i < data_size; ++i) bytes.push_back(static_cast<char>(i));
  return bytes;
}

inline std::string SafetensorsBytes(std::string_view header, size_t data_size) {
  return SafetensorsBytes(header, data_size, header.size());
}

}  // namespace triad::io::testing
