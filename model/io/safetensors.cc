#include "model/io/safetensors.h"

#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/io/mapped_file.h"
#include "model/io/safetensors_header.h"
#include "model/status_macros.h"

namespace triad::io {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<DTypeInfo, 10> kDTypes = {{
    {DType::kF64, "F64", 8},
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8},
    {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
}};

const DTypeInfo& Info(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  return kDTypes[1];  // unreachable for a valid enumerator
}

constexpr size_t kSizeFieldBytes = 8;

// The header size field is little-endian whatever the host; read it bytewise.
uint64_t ReadLittleEndian64(const uint8_t* bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < kSizeFieldBytes; ++i) value |= uint64_t{bytes[i]} << (8 * i);
  return value;
}

}  // namespace

std::string_view DTypeName(DType dtype) { return Info(dtype).name; }

size_t DTypeSize(DType dtype) { return Info(dtype).size; }

std::optional<DType> DTypeFromName(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

int64_t TensorView::num_elements() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;  // cannot overflow: Open checked the byte size
  return count;
}

SafetensorsFile::~SafetensorsFile() = default;

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  TRIAD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapping, MappedFile::Open(path));
  const uint64_t file_size = mapping->size();
  if (file_size < kSizeFieldBytes) {
    return absl::DataLossError(absl::StrCat(path, ": file is ", file_size,
                                            " bytes, too short for the 8-byte header size"));
  }
  const uint64_t header_size = ReadLittleEndian64(mapping->data());
  if (header_size > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": header size ", header_size,
                                                   " exceeds the limit of ", kMaxHeaderBytes,
                                                   " bytes; not a safetensors file?"));
  }
  if (header_size > file_size - kSizeFieldBytes) {
    return absl::DataLossError(absl::StrCat(path, ": header size ", header_size,
                                            " runs past the end of the file (", file_size,
                                            " bytes); the file may be truncated"));
  }
  const uint64_t data_start = kSizeFieldBytes + header_size;
  const std::string_view header_text(
      reinterpret_cast<const char*>(mapping->data()) + kSizeFieldBytes, header_size);
  TRIAD_ASSIGN_OR_RETURN(ParsedHeader header,
                         ParseSafetensorsHeader(path, header_text, file_size - data_start));

  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->metadata_ = std::move(header.metadata);
  // names_ is complete before any view takes a string_view into it: growing the vector would
  // move short strings and leave the views dangling.
  file->names_.reserve(header.tensors.size());
  for (const HeaderEntry& entry : header.tensors) file->names_.push_back(entry.name);
  file->views_.reserve(header.tensors.size());
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    HeaderEntry& entry = header.tensors[i];
    TensorView view;
    view.name = file->names_[i];
    view.dtype = entry.dtype;
    view.shape = std::move(entry.shape);
    view.data = mapping->data() + data_start + entry.begin;
    view.num_bytes = static_cast<size_t>(entry.end - entry.begin);
    file->views_.push_back(std::move(view));
    file->index_.emplace(file->names_[i], i);
  }
  file->mapping_ = std::move(mapping);
  return file;
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &views_[it->second];
}

void SafetensorsFile::Release(std::string_view name) const {
  const TensorView* view = Find(name);
  if (view == nullptr || view->num_bytes == 0) return;
  const size_t offset =
      static_cast<size_t>(static_cast<const uint8_t*>(view->data) - mapping_->data());
  mapping_->ReleaseRange(offset, view->num_bytes);
}

}  // namespace triad::io
