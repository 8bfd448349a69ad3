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

// Every case with `load` (a float32 placement) matches transformers: floats within the fixture
// tolerance, token ids exactly.
void ExpectFloat32Parity(const LoadOptions& load);

// bfloat16 rounds every weight and activation to 8 significant bits, so exact parity is not
// expected. Float outputs must stay within 0.1 * max(1, max|expected|) for decoder-only models
// (measured: <= 0.063) and 0.5 * max(1, max|expected|) for T5 (measured: <= 0.33; the tiny T5
// logits are O(1) differences of large dot products, so bf16 cancellation dominates); token
// agreement is printed (prefixed with `tag`), not asserted (a top-2 gap of 1e-3 is below bf16
// resolution).
void ExpectBfloat16WithinBounds(const LoadOptions& load, const std::string& tag);

}  // namespace triad::testing
