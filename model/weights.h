// WeightLoader: fetches named tensors from a memory-mapped checkpoint, checks their shapes
// against what the config implies, and converts each one to the serving dtype and device
// before releasing its mapped pages, so a checkpoint is never resident twice. Used only during
// LoadModel, by one thread.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/io/safetensors.h"
#include "model/layers.h"
#include "model/model.h"

namespace triad {

class WeightLoader {
 public:
  // `base_prefix` ("transformer.", "model.", or "") is the base-model prefix HF adds inside
  // head models; names are looked up with and without it.
  WeightLoader(const io::Checkpoint& checkpoint, std::string model_dir, std::string base_prefix,
               Placement placement)
      : checkpoint_(checkpoint),
        model_dir_(std::move(model_dir)),
        base_prefix_(std::move(base_prefix)),
        placement_(placement) {}

  bool Has(const std::string& name) const { return !Resolve(name).empty(); }
  // The tensor `name` with exactly `shape`, in the serving dtype on the serving device.
  // `dtype` overrides the serving dtype (HF keeps some modules in fp32).
  absl::StatusOr<at::Tensor> Get(const std::string& name, std::vector<int64_t> shape,
                                 std::optional<at::ScalarType> dtype = std::nullopt);
  // `<prefix>.weight` [out, in] (+ `<prefix>.bias` [out] when `bias`).
  absl::StatusOr<Linear> GetLinear(const std::string& prefix, int64_t in, int64_t out, bool bias,
                                   std::optional<at::ScalarType> dtype = std::nullopt);
  // GPT-1 Conv1D: `<prefix>.weight` stored [in, out], transposed to Linear's [out, in].
  absl::StatusOr<Linear> GetConv1D(const std::string& prefix, int64_t in, int64_t out);

  int64_t bytes_loaded() const { return bytes_loaded_; }

 private:
  // The stored name `name` resolves to, or "" when absent under every spelling.
  std::string Resolve(const std::string& name) const;

  const io::Checkpoint& checkpoint_;
  std::string model_dir_;
  std::string base_prefix_;
  Placement placement_;
  int64_t bytes_loaded_ = 0;
};

}  // namespace triad
