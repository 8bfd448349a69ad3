// The data-driven runner of the model fixtures (tests/data/models or $TRIAD_MODEL_FIXTURES):
// runs every case of every folder and reports each comparison to a callback, so the float32,
// bfloat16 and CUDA tests share one implementation of every case kind.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/model.h"

namespace triad::testing {

// One comparison of a case: floats (diff vs tolerance) or token ids (equal or not).
struct Measurement {
  std::string what;
  bool is_ids = false;
  double diff = 0;       // floats: max |actual - expected|
  double tolerance = 0;  // floats: fp32 tolerance
  bool ids_equal = true;
  double agreement = 1;  // ids: fraction of equal positions (when shapes agree)
};
using Measurements = std::vector<Measurement>;

// Called once per comparison: `where` is "folder/case", `config` the folder's model config.
using CaseCheck = std::function<void(const std::string& where, const ModelConfig& config,
                                     const Measurement& m)>;

// Loads every fixture folder with `load` and runs all its cases (gtest failures for cases that
// cannot run: unknown kind, model errors).
void ForEveryCase(const LoadOptions& load, const CaseCheck& check);

}  // namespace triad::testing
