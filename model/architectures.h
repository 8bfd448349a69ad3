// The per-architecture loaders LoadModel dispatches to (registered explicitly in model.cc).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "model/model.h"
#include "model/weights.h"

namespace triad {

absl::StatusOr<std::unique_ptr<Model>> LoadGpt1(const ModelConfig& config, WeightLoader& weights,
                                                const Placement& placement);
absl::StatusOr<std::unique_ptr<Model>> LoadT5(const ModelConfig& config, WeightLoader& weights,
                                              const Placement& placement);
absl::StatusOr<std::unique_ptr<Model>> LoadLlama(const ModelConfig& config, WeightLoader& weights,
                                                 const Placement& placement);

// T5 decode queries at positions below this read their self-attention bias as a view of one
// precomputed row (t5.cc); later positions compute it per query. Exposed for the ragged test.
inline constexpr int64_t kT5DecodeBiasSpan = 4096;

// T5 relative-position bucket ids (HF `_relative_position_bucket`) for `relative_position`
// (key - query, int64 tensor). Exposed for the fixture test.
at::Tensor T5RelativePositionBucket(const at::Tensor& relative_position, bool bidirectional,
                                    int64_t num_buckets, int64_t max_distance);

}  // namespace triad
