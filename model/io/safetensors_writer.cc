// WriteSafetensors: the writer half of safetensors.h.
#include <cerrno>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/io/safetensors.h"
#include "model/status_macros.h"

namespace triad::io {
namespace {

// ordered_json keeps insertion order, so __metadata__ comes first and tensors follow in
// storage order, as HF writes them.
using nlohmann::ordered_json;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

absl::Status CheckTensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                          std::vector<uint64_t>* byte_sizes) {
  std::set<std::string_view> seen;
  for (const TensorToWrite& tensor : tensors) {
    const std::string where = absl::StrCat(path, ": tensor '", tensor.name, "'");
    if (tensor.name.empty() || tensor.name == "__metadata__") {
      return absl::InvalidArgumentError(absl::StrCat(where, ": reserved or empty name"));
    }
    if (!seen.insert(tensor.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": name appears twice"));
    }
    uint64_t bytes = DTypeSize(tensor.dtype);
    for (int64_t dim : tensor.shape) {
      if (dim < 0) return absl::InvalidArgumentError(absl::StrCat(where, ": negative dim"));
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes)) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": byte size overflows"));
      }
    }
    if (bytes > 0 && tensor.data == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": data is null"));
    }
    byte_sizes->push_back(bytes);
  }
  return absl::OkStatus();
}

std::string BuildHeader(const std::vector<TensorToWrite>& tensors,
                        const std::vector<uint64_t>& byte_sizes,
                        const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    header[tensors[i].name] = {{"dtype", DTypeName(tensors[i].dtype)},
                               {"shape", tensors[i].shape},
                               {"data_offsets", {offset, offset + byte_sizes[i]}}};
    offset += byte_sizes[i];
  }
  // Padding to 8 bytes keeps the data section 8-byte aligned in the mapping.
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<uint64_t> byte_sizes;
  TRIAD_RETURN_IF_ERROR(CheckTensors(path, tensors, &byte_sizes));
  std::string header;
  try {
    header = BuildHeader(tensors, byte_sizes, metadata);
  } catch (const nlohmann::json::exception& e) {  // names or metadata that are not UTF-8
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot encode header: ", e.what()));
  }
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (file == nullptr) {
    const int error = errno;
    return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot create"));
  }
  uint8_t size_field[8];
  for (size_t i = 0; i < 8; ++i) size_field[i] = static_cast<uint8_t>(header.size() >> (8 * i));
  bool ok = std::fwrite(size_field, 1, 8, file.get()) == 8 &&
            std::fwrite(header.data(), 1, header.size(), file.get()) == header.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i) {
    if (byte_sizes[i] == 0) continue;
    ok = std::fwrite(tensors[i].data, 1, byte_sizes[i], file.get()) == byte_sizes[i];
  }
  // fclose flushes; a full disk can surface only there.
  ok = (std::fclose(file.release()) == 0) && ok;
  if (!ok) {
    // A short write need not set errno; never turn that into an OK status.
    const int error = errno;
    const std::string message = absl::StrCat(path, ": write failed");
    return error != 0 ? absl::ErrnoToStatus(error, message) : absl::InternalError(message);
  }
  return absl::OkStatus();
}

}  // namespace triad::io
