#include "model/weights.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "model/huge_pages.h"
#include "model/status_macros.h"

namespace triad {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<at::ScalarType> StorageType(io::DType dtype) {
  switch (dtype) {
    case io::DType::kF64: return at::kDouble;
    case io::DType::kF32: return at::kFloat;
    case io::DType::kF16: return at::kHalf;
    case io::DType::kBF16: return at::kBFloat16;
    case io::DType::kI64: return at::kLong;
    case io::DType::kI32: return at::kInt;
    default: return absl::InvalidArgumentError("unsupported");
  }
}

}  // namespace

std::string WeightLoader::Resolve(const std::string& name) const {
  if (checkpoint_.Find(name) != nullptr) return name;
  if (!base_prefix_.empty()) {
    if (absl::StartsWith(name, base_prefix_)) {
      const std::string bare = name.substr(base_prefix_.size());
      if (checkpoint_.Find(bare) != nullptr) return bare;
    } else if (checkpoint_.Find(base_prefix_ + name) != nullptr) {
      return base_prefix_ + name;
    }
  }
  return "";
}

absl::StatusOr<at::Tensor> WeightLoader::Get(const std::string& name,
                                             std::vector<int64_t> shape,
                                             std::optional<at::ScalarType> dtype) {
  const std::string stored = Resolve(name);
  if (stored.empty()) {
    return absl::NotFoundError(absl::StrCat(model_dir_, ": tensor \"", name,
                                            "\" is missing from the checkpoint"));
  }
  const io::TensorView* view = checkpoint_.Find(stored);
  const std::string file = checkpoint_.FileOf(stored);
  if (view->shape != shape) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": tensor \"", stored, "\" has shape ", ShapeString(view->shape),
                     " but the config implies ", ShapeString(shape)));
  }
  auto storage = StorageType(view->dtype);
  if (!storage.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": tensor \"", stored, "\" has dtype ", std::string(io::DTypeName(view->dtype)),
                     ", which cannot hold weights (F32, F16, BF16, F64 are supported)"));
  }
  // from_blob does not copy; the copy into `tensor` (on huge pages on the CPU: huge_pages.h)
  // is the one resident copy, then the mapped pages are dropped.
  const at::Tensor mapped = at::from_blob(const_cast<void*>(view->data), view->shape,
                                          at::TensorOptions().dtype(*storage));
  at::Tensor tensor = EmptyHugePaged(
      view->shape,
      at::TensorOptions().device(placement_.device).dtype(dtype.value_or(placement_.dtype)));
  tensor.copy_(mapped);
  checkpoint_.Release(stored);
  bytes_loaded_ += tensor.nbytes();
  return tensor;
}

absl::StatusOr<Linear> WeightLoader::GetLinear(const std::string& prefix, int64_t in, int64_t out,
                                               bool bias, std::optional<at::ScalarType> dtype) {
  Linear linear;
  TRIAD_ASSIGN_OR_RETURN(linear.weight, Get(prefix + ".weight", {out, in}, dtype));
  if (bias) {
    TRIAD_ASSIGN_OR_RETURN(linear.bias, Get(prefix + ".bias", {out}, dtype));
  }
  return linear;
}

absl::StatusOr<Linear> WeightLoader::GetConv1D(const std::string& prefix, int64_t in,
                                               int64_t out) {
  Linear linear;
  TRIAD_ASSIGN_OR_RETURN(at::Tensor w, Get(prefix + ".weight", {in, out}));
  linear.weight = EmptyHugePaged({out, in}, w.options()).copy_(w.t());
  TRIAD_ASSIGN_OR_RETURN(linear.bias, Get(prefix + ".bias", {out}));
  return linear;
}

}  // namespace triad
